from __future__ import annotations

import json
from decimal import Decimal

import pytest

from chat.models import Request

pytestmark = pytest.mark.django_db


def post(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def test_simple_answers_with_usage_cost_and_duration(api):
    response = post(api, "/llm/simple", {"prompt": "one two three", "model": "gpt-4o-mini"})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"request_id", "content", "model", "usage", "cost_usd", "duration_ms"}
    assert body["content"] == "Echo: one two three"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert Decimal(str(body["cost_usd"])) == Request.objects.get(pk=body["request_id"]).cost_usd
    assert body["duration_ms"] >= 0
    assert Request.objects.get().endpoint == "/llm/simple"


def test_simple_uses_the_default_model_when_none_is_named(api, settings):
    settings.LLM_DEFAULT_MODEL = "gpt-4o"
    body = post(api, "/llm/simple", {"prompt": "hi"}).json()

    assert body["model"] == "gpt-4o"
    assert Request.objects.get().resolved_model == "gpt-4o"


def test_chat_takes_a_conversation_and_passes_options_on(api, upstream):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "Echo: first"},
        {"role": "user", "content": "second question"},
    ]
    response = post(
        api,
        "/llm/chat",
        {"messages": messages, "model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 50, "metadata": {"t": 1}},
    )

    assert response.status_code == 200
    assert response.json()["content"] == "Echo: second question"
    sent = upstream.stats.last_body
    assert sent["temperature"] == 0.2
    assert sent["max_tokens"] == 50
    assert [m["content"] for m in sent["messages"]] == [m["content"] for m in messages]
    row = Request.objects.get()
    assert row.messages == messages
    assert row.metadata == {"t": 1}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": "hello"}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": 3}, "temperature"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
        ({"messages": [{"role": "user", "content": "x"}], "metadata": "tag"}, "metadata"),
        ({"messages": [{"role": "user", "content": "x"}], "base_url": "http://evil"}, "base_url"),
        ({"prompt": "x"}, "messages"),
    ],
)
def test_chat_refuses_bad_input_naming_the_field(api, body, param):
    response = post(api, "/llm/chat", body)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert not Request.objects.exists()


def test_simple_refuses_a_missing_prompt(api):
    response = post(api, "/llm/simple", {"model": "gpt-4o-mini"})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "prompt"


def test_models_lists_the_catalog_by_provider_with_prices(api):
    body = api.get("/api/models").json()

    providers = {p["provider"]: {m["name"]: m for m in p["models"]} for p in body["providers"]}
    assert {"openai", "demo"} <= set(providers)
    mini = providers["openai"]["gpt-4o-mini"]
    assert (mini["input_cost_per_million"], mini["output_cost_per_million"]) == (0.15, 0.6)
    assert providers["openai"]["text-embedding-3-small"]["mode"] == "embedding"
    assert providers["demo"]["offline-demo"]["input_cost_per_million"] == 0
    assert body["default"] == "gpt-4o-mini"


def test_health_reports_database_cache_and_version_without_a_key(anon, db):
    response = anon.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok", "version": "0.1.0"}


def test_a_wrong_method_is_a_405_in_the_error_shape(api):
    response = api.get("/api/chat")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_an_unknown_api_path_is_a_json_404(api):
    response = api.get("/api/no/such/thing")

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_answers_name_their_row_in_a_header(api):
    response = post(api, "/llm/chat", {"messages": [{"role": "user", "content": "x"}], "model": "gpt-4o-mini"})
    streamed = post(
        api, "/llm/chat", {"messages": [{"role": "user", "content": "y"}], "model": "gpt-4o-mini", "stream": True}
    )
    body = b"".join(streamed)

    assert response["X-Request-Id"] == response.json()["request_id"]
    assert streamed["X-Request-Id"].encode() in body  # the done event names the same row
    assert Request.objects.filter(pk=streamed["X-Request-Id"], streamed=True).exists()
