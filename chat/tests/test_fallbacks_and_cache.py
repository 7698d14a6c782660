from __future__ import annotations

import json
import socket

import pytest

from chat.models import Request

pytestmark = pytest.mark.django_db


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def catalog_file(settings, tmp_path, upstream):
    def write(*models: dict) -> None:
        path = tmp_path / "catalog.json"
        path.write_text(json.dumps({"models": list(models)}))
        settings.MODEL_CATALOG_FILE = str(path)

    return write


def post(client, body, **headers):
    return client.post("/api/chat", data=json.dumps(body), content_type="application/json", **headers)


def test_a_failing_model_falls_back_and_the_call_is_one_row(api, catalog_file, upstream):
    catalog_file(
        {
            "name": "primary",
            "model": "openai/gpt-4o-mini",
            "api_base": f"http://127.0.0.1:{dead_port()}/v1",
            "fallbacks": ["gpt-4o-mini"],
        }
    )

    response = post(api, {"query": "still answered", "model": "primary"})

    assert response.status_code == 200
    assert response.json()["response"] == "Echo: still answered"
    row = Request.objects.get()
    assert (row.model, row.resolved_model, row.status) == ("primary", "gpt-4o-mini", "success")
    assert row.metadata["fallback_from"] == ["primary: provider_error"]
    assert row.cost_usd > 0  # priced as the model that answered


def test_when_every_fallback_fails_the_last_error_is_answered(api, catalog_file):
    catalog_file(
        {"name": "a", "model": "openai/x", "api_base": f"http://127.0.0.1:{dead_port()}/v1", "fallbacks": ["b"]},
        {"name": "b", "model": "openai/y", "api_base": f"http://127.0.0.1:{dead_port()}/v1"},
    )

    response = post(api, {"query": "hi", "model": "a"})

    assert response.status_code == 502
    row = Request.objects.get()
    assert row.status == "error"
    assert row.metadata["fallback_from"] == ["a: provider_error", "b: provider_error"]


def test_a_bad_request_is_not_retried_on_a_fallback(api, catalog_file, upstream):
    catalog_file({"name": "strict", "model": "openai/gpt-4o-mini", "api_base": upstream.url, "fallbacks": ["gpt-4o"]})
    before = upstream.stats.requests

    response = post(api, {"query": "too long [[status:400]]", "model": "strict"})

    assert response.status_code == 400
    assert upstream.stats.requests == before + 1


def test_identical_deterministic_requests_are_served_from_the_cache_at_zero_cost(api, catalog_file, upstream):
    catalog_file({"name": "cached-mini", "model": "openai/gpt-4o-mini", "api_base": upstream.url, "cache_ttl": 60})
    body = {"messages": [{"role": "user", "content": "same question"}], "model": "cached-mini", "temperature": 0}
    before = upstream.stats.requests

    first = api.post("/llm/chat", data=json.dumps(body), content_type="application/json").json()
    second = api.post("/llm/chat", data=json.dumps(body), content_type="application/json").json()

    assert upstream.stats.requests == before + 1
    assert second["content"] == first["content"] == "Echo: same question"
    assert second["cost_usd"] == 0 and first["cost_usd"] > 0
    rows = {str(r.id): r for r in Request.objects.all()}
    assert rows[second["request_id"]].cache_hit and rows[second["request_id"]].cost_usd == 0
    assert not rows[first["request_id"]].cache_hit
    assert rows[second["request_id"]].total_tokens == rows[first["request_id"]].total_tokens


def test_the_cache_is_skipped_for_sampling_and_when_the_caller_says_so(api, catalog_file, upstream):
    catalog_file({"name": "cached-mini", "model": "openai/gpt-4o-mini", "api_base": upstream.url, "cache_ttl": 60})
    before = upstream.stats.requests

    post(api, {"query": "q1", "model": "cached-mini"})
    post(api, {"query": "q1", "model": "cached-mini"})  # temperature not 0: not deterministic
    post(api, {"query": "q2", "model": "gpt-4o-mini"}, HTTP_X_GATEWAY_CACHE="on")
    post(api, {"query": "q2", "model": "gpt-4o-mini"}, HTTP_X_GATEWAY_CACHE="on")
    post(api, {"query": "q2", "model": "gpt-4o-mini"}, HTTP_X_GATEWAY_CACHE="off")

    assert upstream.stats.requests == before + 4
    assert Request.objects.filter(cache_hit=True).count() == 1


def test_a_stream_whose_model_fails_before_its_first_chunk_falls_back(api, catalog_file):
    catalog_file(
        {
            "name": "primary",
            "model": "openai/gpt-4o-mini",
            "api_base": f"http://127.0.0.1:{dead_port()}/v1",
            "fallbacks": ["gpt-4o-mini"],
        }
    )
    body = {"messages": [{"role": "user", "content": "stream on"}], "model": "primary", "stream": True}

    response = api.post("/llm/chat", data=json.dumps(body), content_type="application/json")
    events = b"".join(response).decode()

    assert '"type":"done"' in events and "Echo" in events
    row = Request.objects.get()
    assert (row.model, row.resolved_model, row.status, row.streamed) == ("primary", "gpt-4o-mini", "success", True)
    assert row.response == "Echo: stream on"
    assert row.metadata["fallback_from"] == ["primary: provider_error"]
