"""The same rate limit and budget across two server processes that share Redis.

Two `uvicorn gateway.asgi:application` processes run on free ports with one SQLite file, one Redis and
the test upstream; calls alternate between them. Skipped, saying why, only when Redis does not answer.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings as django_settings

from chat.tests.counters import REDIS_URL, redis_answers
from conftest import PROVIDER_KEY

BASE_DIR = Path(django_settings.BASE_DIR)
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(
    not redis_answers(), reason=f"Redis does not answer at {REDIS_URL}: limits across processes need it"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "python"), "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture
def two_gateways(tmp_path, upstream):
    """Base URLs of two gateway processes sharing a fresh database and a Redis key prefix of their own."""
    prefix = f"mp-{uuid.uuid4().hex[:8]}"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "ENV_FILE": str(tmp_path / "no.env"),  # nothing from the developer's .env
        "DJANGO_SETTINGS_MODULE": "gateway.settings",
        "SECRET_KEY": "multi-process-test-secret-key-" + uuid.uuid4().hex,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
        "CACHE_URL": f"{REDIS_URL}?key_prefix={prefix}",
        "OPENAI_API_KEY": PROVIDER_KEY,
        "OPENAI_API_BASE": upstream.url,
        "LLM_LOG_DIR": str(tmp_path / "logs"),
        "LLM_MAX_RETRIES": "0",
        "DB_WRITER_THREADS": "2",
    }
    manage(env, "migrate", "--noinput", "-v", "0")
    processes: list[subprocess.Popen] = []
    try:
        urls = []
        for name in ("a", "b"):
            port = free_port()
            log = open(tmp_path / f"uvicorn-{name}.log", "w")  # noqa: SIM115 - closed with the process
            command = [str(BIN / "uvicorn"), "gateway.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
            processes.append(
                subprocess.Popen([*command, "--no-access-log"], cwd=BASE_DIR, env=env, stdout=log, stderr=log)
            )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 90
        for url, process in zip(urls, processes, strict=True):
            while True:
                assert process.poll() is None, (tmp_path / "uvicorn-a.log").read_text()[-2000:]
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "a gateway process did not start in 90 s"
                time.sleep(0.2)
        yield env, urls
    finally:
        for process in processes:  # only the processes this fixture started, by their PID
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        client = redis.Redis.from_url(REDIS_URL)
        names = list(client.scan_iter(match=f"{prefix}*"))
        if names:
            client.delete(*names)
        client.close()


def alternate(urls: list[str], raw: str, path: str, body: dict, count: int) -> list[tuple[int, int, str]]:
    """`count` calls, taking turns between the servers: (server index, status, error code)."""
    out = []
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {raw}"}) as client:
        for i in range(count):
            response = client.post(urls[i % 2] + path, json=body)
            code = response.json()["error"]["code"] if response.status_code != 200 else ""
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
            out.append((i % 2, response.status_code, code))
    return out


def test_requests_per_minute_hold_across_two_server_processes(two_gateways):
    env, urls = two_gateways
    raw = manage(env, "create_api_key", "--app", "multi", "--create-app", "--rpm", "5", "--quiet").strip()

    calls = alternate(urls, raw, "/llm/simple", {"prompt": "Hello world", "model": "gpt-4o-mini"}, 10)

    assert [status for _, status, _ in calls] == [200] * 5 + [429] * 5
    assert {server for server, status, _ in calls if status == 200} == {0, 1}  # both served some
    assert {code for _, status, code in calls if status == 429} == {"rate_limit_exceeded"}


def test_a_budget_holds_across_two_server_processes(two_gateways):
    env, urls = two_gateways
    setup = (
        "from decimal import Decimal; from chat.models import Application, Request; "
        "from chat.services.keys import key_create; "
        "key, raw = key_create(application=Application.objects.create(name='multi'), budget_usd=Decimal('0.0001')); "
        "Request.objects.create(key=key, application_id='multi', endpoint='/llm/simple', model='gpt-4o-mini', "
        "status='success', cost_usd=Decimal('0.00009')); print(raw)"
    )
    raw = manage(env, "shell", "--no-imports", "-c", setup).split()[-1]  # 1e-5 USD of the budget left
    # Each call reserves about 5.3e-6 USD and costs 2.1e-6: three fit when both processes count together.
    body = {"messages": [{"role": "user", "content": "Hello world"}], "model": "gpt-4o-mini", "max_tokens": 5}

    calls = alternate(urls, raw, "/llm/chat", body, 8)

    assert [status for _, status, _ in calls] == [200] * 3 + [429] * 5
    assert {code for _, status, code in calls if status == 429} == {"budget_exceeded"}
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///")) as db:
        costs = [Decimal(text) for (text,) in db.execute("SELECT CAST(cost_usd AS TEXT) FROM chat_request")]
    assert sum(costs) == Decimal("0.00009") + 3 * Decimal("0.0000021")
