"""`/v1` input checks and shapes, through Django's test client: bad input is a 400 naming the field, never a row."""

from __future__ import annotations

import json

import pytest

from chat.models import Request

pytestmark = pytest.mark.django_db
HELLO = [{"role": "user", "content": "Hello world"}]


def post(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": HELLO}, "model"),
        ({"model": "gpt-4o-mini"}, "messages"),
        ({"model": "gpt-4o-mini", "messages": [{"content": "hi"}]}, "messages[0].role"),
        ({"model": "gpt-4o-mini", "messages": HELLO, "temperature": "hot"}, "temperature"),
        ({"model": "gpt-4o-mini", "messages": HELLO, "top_p": 2}, "top_p"),
        ({"model": "gpt-4o-mini", "messages": HELLO, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": "gpt-4o-mini", "messages": HELLO, "stream": True, "n": 2}, "n"),
        ({"model": "gpt-4o-mini", "messages": HELLO, "stream_options": {"include_usage": True}}, "stream_options"),
        ({"model": "gpt-4o-mini", "messages": HELLO, "stream": "yes"}, "stream"),
        ({"model": "gpt-4o-mini", "messages": HELLO, "tools": {"type": "function"}}, "tools"),
        ({"model": "gpt-4o-mini", "messages": HELLO, "tools": [{"function": {}}]}, "tools"),
        ({"model": "gpt-4o-mini", "messages": HELLO, "response_format": {"type": "xml"}}, "response_format"),
        ({"model": "gpt-4o-mini", "messages": HELLO, "tool_choice": "always"}, "tool_choice"),
        ({"model": "gpt-4o-mini", "messages": HELLO, "api_base": "http://169.254.169.254"}, "api_base"),
        ({"model": "gpt-4o-mini", "messages": HELLO, "mock_response": "free"}, "mock_response"),
        ({"model": "text-embedding-3-small", "messages": HELLO}, "model"),
    ],
)
def test_bad_chat_input_is_a_400_naming_the_field_and_nothing_is_sent(api, upstream, body, param):
    before = upstream.stats.requests
    response = post(api, "/v1/chat/completions", body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["type"]) == (param, "invalid_request_error")
    assert not Request.objects.exists()
    assert upstream.stats.requests == before


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "text-embedding-3-small"}, "input"),
        ({"model": "text-embedding-3-small", "input": []}, "input"),
        ({"model": "text-embedding-3-small", "input": [1, 2, 3]}, "input"),
        ({"model": "text-embedding-3-small", "input": ""}, "input"),
        ({"model": "gpt-4o-mini", "input": "hi"}, "model"),
        ({"model": "text-embedding-3-small", "input": "hi", "encoding_format": "hex"}, "encoding_format"),
    ],
)
def test_bad_embeddings_input_is_a_400_naming_the_field(api, body, param):
    response = post(api, "/v1/embeddings", body)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert not Request.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/v1/chat/completions"), ("post", "/v1/embeddings"), ("get", "/v1/models")],
)
def test_every_v1_endpoint_needs_a_key(anon, method, path):
    response = getattr(anon, method)(path)

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_a_get_on_chat_completions_is_a_405_in_the_error_shape(api):
    response = api.get("/v1/chat/completions")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_the_offline_demo_model_answers_in_the_openai_shape(api, upstream):
    before = upstream.stats.requests
    response = post(api, "/v1/chat/completions", {"model": "offline-demo", "messages": HELLO})

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert "offline demo model" in body["choices"][0]["message"]["content"]
    assert upstream.stats.requests == before
    assert Request.objects.get().endpoint == "/v1/chat/completions"
