"""litellm itself, as a client of the gateway (`openai/<model>` with `api_base`), gets what it would from OpenAI."""

from __future__ import annotations

import litellm
import pytest

from chat.models import Request
from chat.tests.live import live, live_gateway  # noqa: F401

HELLO = [{"role": "user", "content": "Hello world"}]


@pytest.fixture
def through_gateway(live, owner_key) -> dict:  # noqa: F811
    return {"model": "openai/gpt-4o-mini", "api_base": f"{live}/v1", "api_key": owner_key, "max_retries": 0}


def test_litellm_completes_through_the_gateway(through_gateway):
    answer = litellm.completion(messages=HELLO, **through_gateway)

    assert answer.choices[0].message.content == "Echo: Hello world"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (2, 3)
    row = Request.objects.get()
    assert (row.endpoint, row.model, row.status) == ("/v1/chat/completions", "gpt-4o-mini", "success")


def test_litellm_streams_through_the_gateway_with_usage(through_gateway):
    chunks = list(
        litellm.completion(messages=HELLO, stream=True, stream_options={"include_usage": True}, **through_gateway)
    )

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: Hello world"
    usage = next(c.usage for c in chunks if getattr(c, "usage", None))
    assert (usage.prompt_tokens, usage.completion_tokens) == (2, 3)
    row = Request.objects.get()
    assert (row.streamed, row.completion_tokens, row.response) == (True, 3, "Echo: Hello world")


def test_litellm_maps_the_gateways_errors_to_its_own_exceptions(live):  # noqa: F811
    with pytest.raises(litellm.AuthenticationError):
        litellm.completion(
            model="openai/gpt-4o-mini", api_base=f"{live}/v1", api_key="gw_" + "y" * 40, messages=HELLO, max_retries=0
        )
    assert not Request.objects.exists()
