"""Rate limits per key: requests and tokens per minute, 429 with Retry-After, in memory and in Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import pytest
from django.test import Client

from chat import limits
from chat.models import Request
from chat.services.keys import key_create
from chat.tests.counters import async_orm_closed, store  # noqa: F401


@pytest.fixture
def gateway_threads(settings):
    """Database work on the gateway's own pool of threads, as in production, their connections closed after."""
    from chat.tests.live import db_threads_close

    settings.DB_WRITER_THREADS = 2
    yield
    db_threads_close()


pytestmark = pytest.mark.django_db


def ask(client: Client, text: str = "Hello world", path: str = "/llm/simple"):
    body = {"prompt": text, "model": "gpt-4o-mini"}
    if path == "/llm/chat":
        body = {"messages": [{"role": "user", "content": text}], "model": "gpt-4o-mini", "stream": True}
    return client.post(path, data=json.dumps(body), content_type="application/json")


def keyed(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def assert_rate_limited(response, limit: str, *, window: int = 60) -> int:
    assert response.status_code == 429, response.content[:300]
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert error["details"]["limit"] == limit
    retry = int(response["Retry-After"])
    assert 1 <= retry <= window
    assert f"Retry in {retry} s" in error["message"]
    return retry


@pytest.mark.usefixtures("store")
def test_a_key_over_its_requests_per_minute_gets_429_with_retry_after(acme, upstream):
    _, raw = key_create(application=acme, rpm=2)
    client = keyed(raw)

    assert [ask(client).status_code for _ in range(2)] == [200, 200]
    before = upstream.stats.requests
    response = ask(client)

    assert_rate_limited(response, "rpm")
    assert "2 requests per 60 seconds" in response.json()["error"]["message"]
    assert upstream.stats.requests == before
    assert Request.objects.count() == 2


@pytest.mark.usefixtures("store")
def test_refused_calls_do_not_count_and_the_window_frees(acme, settings):
    settings.RATE_LIMIT_WINDOW_SECONDS = 1
    _, raw = key_create(application=acme, rpm=1)
    client = keyed(raw)

    assert ask(client).status_code == 200
    assert_rate_limited(ask(client), "rpm", window=1)
    assert_rate_limited(ask(client), "rpm", window=1)
    time.sleep(1.05)

    assert ask(client).status_code == 200
    assert Request.objects.count() == 2


@pytest.mark.usefixtures("store")
def test_tokens_per_minute_count_the_tokens_really_used(acme):
    _, raw = key_create(application=acme, tpm=6)
    client = keyed(raw)

    first = ask(client)  # 2 prompt + 3 completion tokens at the upstream
    second = ask(client)  # 5 of 6 used when it starts: let in
    third = ask(client)  # 10 used: the minute is over

    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["usage"]["total_tokens"] == 5
    assert_rate_limited(third, "tpm")
    assert "6 tokens per 60 seconds" in third.json()["error"]["message"]
    assert Request.objects.count() == 2


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume asynchronous iterators")
@pytest.mark.usefixtures("store")
def test_streamed_calls_count_their_tokens_too(acme):
    _, raw = key_create(application=acme, tpm=5)
    client = keyed(raw)

    response = ask(client, path="/llm/chat")
    events = b"".join(response).decode()
    assert '"done"' in events

    assert response.status_code == 200
    assert_rate_limited(ask(client, path="/llm/chat"), "tpm")


@pytest.mark.usefixtures("store")
def test_a_call_the_provider_fails_still_counts_as_a_request(acme, settings):
    settings.LLM_TIMEOUT_SECONDS = 5
    _, raw = key_create(application=acme, rpm=1)
    client = keyed(raw)

    assert ask(client, "hi [[status:500]]").status_code == 502
    assert_rate_limited(ask(client), "rpm")


@pytest.mark.usefixtures("store")
def test_a_refused_bad_request_does_not_count(acme):
    _, raw = key_create(application=acme, rpm=1)
    client = keyed(raw)

    bad = client.post("/llm/simple", data=json.dumps({"prompt": 1}), content_type="application/json")

    assert bad.status_code == 400
    assert ask(client).status_code == 200


@pytest.mark.usefixtures("store")
def test_limits_belong_to_one_key(acme):
    _, limited = key_create(application=acme, rpm=1)
    _, other = key_create(application=acme, rpm=1)

    assert ask(keyed(limited)).status_code == 200
    assert ask(keyed(limited)).status_code == 429
    assert ask(keyed(other)).status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_orm_closed")
@pytest.mark.usefixtures("store")
@pytest.mark.usefixtures("gateway_threads")
async def test_concurrent_calls_cannot_slip_past_the_limit(acme):
    from asgiref.sync import sync_to_async

    from gateway.asgi import application

    _, raw = await sync_to_async(key_create)(application=acme, rpm=5)
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        body = {"prompt": "Hello [[sleep:0.2]]", "model": "gpt-4o-mini"}
        headers = {"Authorization": f"Bearer {raw}"}
        responses = await asyncio.gather(*(client.post("/llm/simple", json=body, headers=headers) for _ in range(20)))

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 5 + [429] * 15
    assert all(r.headers["Retry-After"] for r in responses if r.status_code == 429)
    assert await Request.objects.acount() == 5


def test_a_key_without_limits_never_waits_on_the_counters(api, monkeypatch):
    async def no_store():
        raise AssertionError("the counters were asked")

    monkeypatch.setattr(limits, "_store", no_store)

    assert ask(api).status_code == 200


def test_a_redis_that_does_not_answer_degrades_to_counting_in_memory(acme, settings, caplog):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    limits._warned_at = 0.0
    _, raw = key_create(application=acme, rpm=1)
    client = keyed(raw)

    with caplog.at_level(logging.WARNING, logger="chat.limits"):
        assert ask(client).status_code == 200
        assert_rate_limited(ask(client), "rpm")

    assert "Redis does not answer" in caplog.text
