"""The official `openai` SDK, pointed at a live gateway with `base_url=<gateway>/v1`, works unchanged."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from chat.models import Request
from chat.tests.live import live, live_gateway  # noqa: F401

HELLO = [{"role": "user", "content": "Hello world"}]


@pytest.fixture
def client(live, owner_key) -> openai.OpenAI:  # noqa: F811
    return openai.OpenAI(base_url=f"{live}/v1", api_key=owner_key, max_retries=0, timeout=10)


def test_the_sdk_gets_a_chat_completion_and_the_call_is_recorded(client):
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HELLO)
    answer = raw.parse()

    assert answer.object == "chat.completion"
    assert answer.choices[0].message.content == "Echo: Hello world"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (2, 3, 5)
    row = Request.objects.get()
    assert str(row.id) == raw.headers["x-request-id"]
    assert (row.endpoint, row.status, row.streamed) == ("/v1/chat/completions", "success", False)
    assert row.model == "gpt-4o-mini"
    assert (row.prompt_tokens, row.completion_tokens) == (2, 3)
    assert row.cost_usd == Decimal("0.0000021")
    assert row.response == "Echo: Hello world"


def test_the_request_options_reach_the_provider_and_user_and_metadata_are_recorded(client, upstream):
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=HELLO,
        temperature=0.2,
        top_p=0.9,
        max_tokens=50,
        stop=["END"],
        seed=7,
        response_format={"type": "json_object"},
        user="alice",
        metadata={"ticket": "T-1"},
    )

    sent = upstream.stats.last_body
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"], sent["stop"], sent["seed"]) == (
        0.2,
        0.9,
        50,
        ["END"],
        7,
    )
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["user"] == "alice"
    assert "metadata" not in sent  # recorded by the gateway, not sent on
    row = Request.objects.get()
    assert row.user_id == "alice"
    assert row.metadata["ticket"] == "T-1"


def test_tool_calls_come_back_in_the_openai_shape(client, upstream):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
            },
        }
    ]
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, tools=tools, tool_choice="auto")

    call = answer.choices[0].message.tool_calls[0]
    assert answer.choices[0].finish_reason == "tool_calls"
    assert (call.id, call.type, call.function.name) == ("call_1", "function", "lookup")
    assert call.function.arguments == '{"text": "Hello world"}'
    assert upstream.stats.last_body["tools"] == tools
    assert upstream.stats.last_body["tool_choice"] == "auto"


def test_n_choices_are_all_returned(client):
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, n=2)

    assert [c.index for c in answer.choices] == [0, 1]
    assert all(c.message.content == "Echo: Hello world" for c in answer.choices)


def test_a_stream_with_include_usage_ends_with_one_usage_chunk(client, upstream):
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: Hello world"
    with_usage = [c for c in chunks if c.usage is not None]
    assert with_usage == [chunks[-1]]
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (2, 3)
    assert {c.id for c in chunks} == {chunks[0].id}
    row = Request.objects.get()
    assert (row.status, row.streamed, row.response) == ("success", True, "Echo: Hello world")
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (2, 3, 5)
    assert row.ttft_ms is not None and row.ttft_ms <= row.latency_ms


def test_a_stream_without_include_usage_has_no_usage_chunk_but_the_row_has_the_providers_counts(client, upstream):
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True))

    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)
    assert upstream.stats.last_body["stream_options"] == {"include_usage": True}  # asked for the row's sake
    row = Request.objects.get()
    assert (row.prompt_tokens, row.completion_tokens) == (2, 3)
    assert "usage_estimated" not in row.metadata


def test_embeddings_come_back_in_the_openai_shape(client):
    answer = client.embeddings.create(model="text-embedding-3-small", input=["first text", "second"])

    assert [e.index for e in answer.data] == [0, 1]
    assert all(len(e.embedding) == 8 for e in answer.data)
    assert answer.usage.prompt_tokens == 3
    row = Request.objects.get()
    assert (row.endpoint, row.model, row.status, row.prompt_tokens) == (
        "/v1/embeddings",
        "text-embedding-3-small",
        "success",
        3,
    )


def test_models_are_listed_and_retrieved(client):
    ids = [m.id for m in client.models.list()]

    assert "gpt-4o-mini" in ids and "text-embedding-3-small" in ids and "offline-demo" in ids
    model = client.models.retrieve("gpt-4o-mini")
    assert (model.id, model.owned_by, model.object) == ("gpt-4o-mini", "openai", "model")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-9")


def test_a_bad_key_raises_authentication_error_and_writes_no_row(live):  # noqa: F811
    client = openai.OpenAI(base_url=f"{live}/v1", api_key="gw_" + "x" * 40, max_retries=0)

    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)

    assert caught.value.status_code == 401
    assert caught.value.body["type"] == "authentication_error"
    assert not Request.objects.exists()


def test_a_provider_rate_limit_raises_rate_limit_error_and_is_recorded(client):
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi [[status:429]]"}])

    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.body["code"] == "provider_rate_limited"
    assert Request.objects.get().status == "error"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": 5}, "temperature"),
        ({"model": "gpt-9"}, "model"),
        ({"messages": []}, "messages"),
        ({"n": 0}, "n"),
    ],
)
def test_bad_input_raises_bad_request_error_naming_the_field(client, upstream, extra, param):
    before = upstream.stats.requests
    body = {"model": "gpt-4o-mini", "messages": HELLO, **extra}

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**body)

    assert caught.value.status_code == 400
    assert caught.value.param == param
    assert not Request.objects.exists()
    assert upstream.stats.requests == before


def test_a_provider_failure_raises_api_status_error_with_the_gateways_status(client):
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi [[status:500]]"}])

    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "provider_error"
    assert Request.objects.get().status == "error"


def test_a_stream_the_provider_refuses_is_an_http_error_not_a_broken_stream(client):
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi [[status:429]]"}], stream=True
        )

    row = Request.objects.get()
    assert (row.status, row.streamed) == ("error", True)


def test_a_stream_cut_by_the_provider_ends_with_an_error_the_sdk_raises(client):
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "one two three four five six [[cut]]"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    assert "provider" in caught.value.message.lower()
    row = Request.objects.get()
    assert (row.status, row.streamed) == ("error", True)
    assert row.response == "".join(received)
    assert row.completion_tokens > 0
