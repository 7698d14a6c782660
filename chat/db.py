"""Database work for the async LLM path, run on a small fixed pool of threads.

A waiting LLM call holds no thread; only the short reads and writes around it do, and
they share `DB_WRITER_THREADS` threads (and so that many connections) per process.
With `DB_WRITER_THREADS=0` the work runs through Django's own thread-sensitive bridge.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

T = TypeVar("T")
_executor: ThreadPoolExecutor | None = None


def _executor_for(threads: int) -> ThreadPoolExecutor:
    global _executor
    if _executor is None or _executor._max_workers != threads:
        _executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gateway-db")
    return _executor


def _in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    close_old_connections()  # drops a connection the database closed or that outlived CONN_MAX_AGE
    return fn(*args, **kwargs)


async def run_db(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn` (which uses the ORM) off the event loop and return its result."""
    threads = settings.DB_WRITER_THREADS
    if threads <= 0:
        return await sync_to_async(fn, thread_sensitive=True)(*args, **kwargs)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor_for(threads), functools.partial(_in_thread, fn, *args, **kwargs))
