"""A live gateway for tests that need real HTTP: uvicorn serving `gateway.asgi.application` on a thread.

Import the fixtures into a test module (`from chat.tests.live import live, live_gateway  # noqa: F401`);
`live` gives the base URL of a server that writes rows through the gateway's own database threads.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import wait

import pytest
import uvicorn
from django.db import connections


class LiveGateway:
    """uvicorn on 127.0.0.1 and a free port, in a daemon thread with its own event loop."""

    def __init__(self) -> None:
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> str:
        from gateway.asgi import application

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(application, lifespan="off", log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True, name="live-gateway"
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the live gateway did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(10)


def db_threads_close() -> None:
    """Close the connections of the gateway's database threads, so the test database can be flushed or dropped."""
    from chat import db

    pool = db._executor
    if pool is None:
        return
    threads = pool._max_workers
    # Every thread must take one task: each waits at the barrier until all of them hold one.
    barrier = threading.Barrier(threads, timeout=5)

    def close() -> None:
        connections.close_all()
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass

    wait([pool.submit(close) for _ in range(threads)], timeout=10)


@pytest.fixture(scope="session")
def live_gateway() -> Iterator[LiveGateway]:
    server = LiveGateway()
    server.start()
    yield server
    server.stop()
    db_threads_close()


@pytest.fixture
def live(live_gateway: LiveGateway, transactional_db, settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The live gateway's base URL; rows are written by its database threads, as in production."""
    settings.DB_WRITER_THREADS = 2
    yield live_gateway.url
    db_threads_close()


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):  # type: ignore[no-untyped-def]
    """Poll `predicate` until it returns something truthy; the last value otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
