"""`POST /llm/chat` with `stream: true`: the events the chat page reads, and the one row per call."""

from __future__ import annotations

import json

import httpx
import pytest

from chat.models import Request
from chat.tests.live import live, live_gateway  # noqa: F401


def events_of(live: str, key: str, content: str) -> list:  # noqa: F811
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], "stream": True}
    response = httpx.post(f"{live}/llm/chat", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    frames = [f.removeprefix("data: ") for f in response.text.split("\n\n") if f]
    assert frames[-1] == "[DONE]"
    return [json.loads(f) for f in frames[:-1]]


def test_a_stream_sends_deltas_then_done_with_the_recorded_figures(live, owner_key):  # noqa: F811
    events = events_of(live, owner_key, "Hello world")

    deltas = [e for e in events if e["type"] == "delta"]
    assert "".join(e["content"] for e in deltas) == "Echo: Hello world"
    done = events[-1]
    assert done["type"] == "done"
    assert [e["type"] for e in events].count("done") == 1
    row = Request.objects.get()
    assert done["request_id"] == str(row.id)
    assert done["content"] == "Echo: Hello world"
    assert done["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert done["cost_usd"] == pytest.approx(float(row.cost_usd))
    assert done["ttft_ms"] == row.ttft_ms
    assert done["duration_ms"] == row.latency_ms
    assert done["model"] == "gpt-4o-mini"
    assert (row.endpoint, row.streamed, row.status, row.response) == ("/llm/chat", True, "success", "Echo: Hello world")


def test_a_stream_the_provider_cuts_ends_with_an_error_event(live, owner_key):  # noqa: F811
    events = events_of(live, owner_key, "one two three four five six [[cut]]")

    assert events[-1]["type"] == "error"
    assert events[-1]["error"]["code"] == "provider_error"
    assert "done" not in [e["type"] for e in events]
    row = Request.objects.get()
    assert (row.status, row.streamed) == ("error", True)
    assert row.response == "".join(e["content"] for e in events if e["type"] == "delta")


def test_a_stream_the_provider_refuses_is_one_error_event_and_one_row(live, owner_key):  # noqa: F811
    events = events_of(live, owner_key, "hi [[status:500]]")

    assert [e["type"] for e in events] == ["error"]
    assert events[0]["error"]["type"] == "provider_error"
    assert Request.objects.get().status == "error"
