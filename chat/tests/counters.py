"""The two homes of rate-limit and spend counters, as a fixture: process memory, and Redis where it answers.

Import it into a test module (`from chat.tests.counters import store  # noqa: F401`): each test using
`store` runs once per home. The Redis run is skipped, saying why, only when Redis does not answer.
"""

from __future__ import annotations

import os
import uuid

import pytest
import redis

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def redis_answers(url: str = REDIS_URL) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.exceptions.RedisError, OSError):
        return False


def redis_cache(url: str = REDIS_URL) -> dict:
    # A prefix of its own: the counters of this run never meet another run's on a shared Redis.
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
        }
    }


@pytest.fixture(params=["memory", "redis"])
def store(request, settings):
    """Counters in process memory, then in Redis."""
    from chat.limits import limits_reset

    if request.param == "redis":
        if not redis_answers():
            pytest.skip(f"Redis does not answer at {REDIS_URL}: the shared counters are tested where it does")
        settings.CACHES = redis_cache()
    else:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    limits_reset()
    yield request.param
    limits_reset()


@pytest.fixture
async def async_orm_closed():
    """After an async test, close the connection its ORM calls opened on asgiref's shared thread.

    Left open, it keeps PostgreSQL from dropping the test database at the end of the run.
    """
    from asgiref.sync import sync_to_async
    from django.db import connections

    yield
    await sync_to_async(connections.close_all)()
