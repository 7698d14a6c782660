"""Streams over real HTTP: the exact bytes of the SSE framing, a client that goes away, usage and its price."""

from __future__ import annotations

import json
import socket
from decimal import Decimal

import httpx
import litellm
import pytest

from chat.models import Request
from chat.tests.live import live, live_gateway, wait_for  # noqa: F401


def stream_body(live: str, key: str, content: str, **extra) -> httpx.Response:  # noqa: F811
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], "stream": True, **extra}
    return httpx.post(f"{live}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def first_event(raw: bytes) -> dict:
    return json.loads(raw.split(b"\n\n", 1)[0].removeprefix(b"data: "))


def test_the_sse_framing_of_a_small_answer_is_byte_exact(live, owner_key):  # noqa: F811
    response = stream_body(live, owner_key, "hi")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    first = first_event(response.content)
    head = f'"id":"{first["id"]}","object":"chat.completion.chunk","created":{first["created"]},"model":"gpt-4o-mini"'

    def chunk(delta: str, finish: str = "null") -> str:
        choice = f'{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}'
        return f'data: {{{head},"choices":[{choice}]}}\n\n'

    expected = (
        chunk('{"role":"assistant","content":""}')
        + chunk('{"content":"Echo:"}')
        + chunk('{"content":" hi"}')
        + chunk("{}", '"stop"')
        + "data: [DONE]\n\n"
    )
    assert response.content == expected.encode()
    assert response.headers["x-request-id"] == str(Request.objects.get().id)


def test_the_usage_chunk_is_framed_exactly_when_asked_for(live, owner_key):  # noqa: F811
    response = stream_body(live, owner_key, "hi", stream_options={"include_usage": True})

    events = response.content.split(b"\n\n")
    first = first_event(response.content)
    usage = (
        '"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,'
        '"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}'
    )
    expected_usage = (
        f'data: {{"id":"{first["id"]}","object":"chat.completion.chunk","created":{first["created"]},'
        f'"model":"gpt-4o-mini","choices":[],{usage}}}'
    )
    assert events[-3:] == [expected_usage.encode(), b"data: [DONE]", b""]
    assert len(events) == 7  # role, two words, stop, usage, [DONE], and the empty tail


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/llm/chat"])
def test_a_client_that_disconnects_mid_stream_leaves_a_cancelled_row_and_the_upstream_call_is_closed(
    live,  # noqa: F811
    owner_key,
    upstream,
    path,
):
    aborted_before = upstream.stats.streams_aborted
    host, port = live.removeprefix("http://").split(":")
    body = json.dumps(
        {
            "model": "gpt-4o-mini",
            "stream": True,
            "messages": [{"role": "user", "content": "slow answer [[chunks:100]] [[chunk_delay:0.05]]"}],
        }
    ).encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {owner_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    received = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        while received.count(b"data: ") < 6:  # the role chunk and a few words
            received += sock.recv(65536)
        assert upstream.stats.open_streams >= 1

    row = wait_for(lambda: Request.objects.filter(status="cancelled").first())
    assert row is not None, "no cancelled row was written"
    assert (row.endpoint, row.streamed, row.http_status, row.error_type) == (path, True, 499, "cancelled")
    assert row.completion_tokens > 0
    assert row.prompt_tokens > 0
    assert row.response.startswith("Echo: slow answer")
    assert row.latency_ms < 4000  # the whole answer takes 5 s: it was not read to the end
    assert wait_for(lambda: upstream.stats.streams_aborted > aborted_before)
    assert wait_for(lambda: upstream.stats.open_streams == 0)
    assert Request.objects.count() == 1


def test_a_stream_with_cached_and_reasoning_tokens_is_priced_as_litellm_prices_it(live, owner_key):  # noqa: F811
    words = " ".join(f"w{i}" for i in range(59))
    response = stream_body(live, owner_key, f"{words} [[cached:40]] [[reasoning:2]]")
    assert response.status_code == 200

    row = Request.objects.get()
    assert (row.prompt_tokens, row.cached_tokens, row.reasoning_tokens) == (59, 40, 2)
    usage = litellm.Usage(
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        total_tokens=row.total_tokens,
        prompt_tokens_details={"cached_tokens": 40},
        completion_tokens_details={"reasoning_tokens": 2},
    )
    prompt_cost, completion_cost = litellm.cost_per_token(model="gpt-4o-mini", usage_object=usage)
    response_cost = litellm.completion_cost(
        completion_response=litellm.ModelResponse(model="gpt-4o-mini", usage=usage), model="gpt-4o-mini"
    )
    assert row.cost_usd == pytest.approx(Decimal(repr(prompt_cost + completion_cost)), abs=Decimal("1e-12"))
    assert row.cost_usd == pytest.approx(Decimal(repr(response_cost)), abs=Decimal("1e-12"))
    # and the cached tokens were really cheaper than uncached ones
    assert row.cost_usd < Decimal(row.prompt_tokens) * Decimal("0.15e-6") + Decimal(row.completion_tokens) * Decimal(
        "0.6e-6"
    )


def test_a_provider_that_reports_no_usage_is_counted_with_litellms_token_counter(live, owner_key):  # noqa: F811
    response = stream_body(live, owner_key, "count me please [[nousage]]", stream_options={"include_usage": True})

    row = Request.objects.get()
    messages = [{"role": "user", "content": "count me please [[nousage]]"}]
    assert row.prompt_tokens == litellm.token_counter(model="gpt-4o-mini", messages=messages)
    assert row.completion_tokens == litellm.token_counter(
        model="gpt-4o-mini", text="Echo: count me please", count_response_tokens=True
    )
    # (litellm's stream wrapper counts the usage chunk itself when asked for one the provider never sends)
    last_chunk = json.loads(response.content.split(b"\n\n")[-3].removeprefix(b"data: "))
    assert last_chunk["usage"]["prompt_tokens"] == row.prompt_tokens  # the client sees the recorded figures
