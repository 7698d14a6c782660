from __future__ import annotations

import json
from decimal import Decimal

import pytest

from chat.models import Request

pytestmark = pytest.mark.django_db


def post(client, path, body, **extra):
    return client.post(path, data=json.dumps(body), content_type="application/json", **extra)


def test_it_answers_through_the_provider_and_records_one_row(api, upstream):
    response = post(
        api, "/api/chat", {"query": "Hello world", "model": "gpt-4o-mini", "user_id": "alice", "application_id": "acme"}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["response"] == "Echo: Hello world"
    meta = body["metadata"]
    assert meta["tokens"] == {"prompt": 2, "completion": 3, "total": 5}
    assert meta["model"] == "gpt-4o-mini"
    assert (meta["application_id"], meta["user_id"]) == ("acme", "alice")
    # gpt-4o-mini: 0.15 USD per 1M input, 0.60 per 1M output
    assert Decimal(str(meta["cost_usd"])) == Decimal("0.0000021")
    row = Request.objects.get()
    assert str(row.id) == body["request_id"]
    assert (row.status, row.endpoint, row.provider, row.user_id) == ("success", "/api/chat", "openai", "alice")
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (2, 3, 5)
    assert row.cost_usd == Decimal("0.0000021")
    assert row.response == "Echo: Hello world"
    assert row.messages == [{"role": "user", "content": "Hello world"}]
    assert upstream.stats.last_headers["Authorization"].endswith("0123456789abcdef")


def test_the_offline_demo_model_answers_without_a_provider(api, upstream):
    before = upstream.stats.requests
    response = post(api, "/api/chat", {"query": "Hello", "model": "offline-demo"})

    assert response.status_code == 200
    assert "offline demo model" in response.json()["response"]
    assert upstream.stats.requests == before
    assert Request.objects.get().cost_usd == 0


@pytest.mark.parametrize(
    ("marker", "status", "code", "error_type"),
    [
        ("[[status:500]]", 502, "provider_error", "InternalServerError"),
        ("[[status:429]]", 429, "provider_rate_limited", "RateLimitError"),
        ("[[sleep:2]]", 504, "provider_timeout", "Timeout"),
        ("[[malformed]]", 502, "provider_error", "InternalServerError"),
        ("[[reset]]", 502, "provider_error", "InternalServerError"),
    ],
)
def test_a_provider_failure_is_answered_and_recorded(api, settings, marker, status, code, error_type):
    settings.LLM_TIMEOUT_SECONDS = 0.5
    response = post(api, "/api/chat", {"query": f"hi {marker}", "model": "gpt-4o-mini"})

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    row = Request.objects.get()
    assert (row.status, row.http_status, row.error_type) == ("error", status, error_type)
    assert row.error_message
    assert row.cost_usd == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt-4o-mini"}, "query"),
        ({"query": "hi"}, "model"),
        ({"query": 123, "model": "gpt-4o-mini"}, "query"),
        ({"query": "", "model": "gpt-4o-mini"}, "query"),
        ({"query": "hi", "model": ["gpt-4o-mini"]}, "model"),
        ({"query": "hi", "model": "no-such-model"}, "model"),
        ({"query": "hi", "model": "gpt-4o-mini", "api_base": "http://169.254.169.254"}, "api_base"),
        ({"query": "hi", "model": "gpt-4o-mini", "user_id": {"x": 1}}, "user_id"),
        ([{"query": "hi"}], "body"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_no_row(api, upstream, body, param):
    before = upstream.stats.requests
    response = post(api, "/api/chat", body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert not Request.objects.exists()
    assert upstream.stats.requests == before


def test_an_unknown_model_lists_the_available_ones(api):
    error = post(api, "/api/chat", {"query": "hi", "model": "gpt-9"}).json()["error"]

    assert error["code"] == "model_not_found"
    assert "gpt-4o-mini" in error["details"]["available"]
    assert "gpt-4o-mini" in error["message"]


def test_malformed_json_is_a_400(api):
    response = api.post("/api/chat", data="{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "body"
    assert not Request.objects.exists()


def test_a_huge_body_is_refused(api, settings):
    response = post(
        api, "/api/chat", {"query": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10), "model": "gpt-4o-mini"}
    )

    assert response.status_code in (400, 413)
    assert "error" in response.json()
    assert not Request.objects.exists()
