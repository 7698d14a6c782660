from __future__ import annotations

import pytest

from chat.errors import BadRequest, ProviderError
from chat.models import Request
from chat.services import llm_completion, simple_llm_call_async

pytestmark = pytest.mark.django_db(transaction=True)


async def test_simple_call_records_like_the_http_api(log_dir):
    done = await simple_llm_call_async("from python", model="gpt-4o-mini")

    assert done.content == "Echo: from python"
    row = await Request.objects.aget(pk=done.request_id)
    assert (row.endpoint, row.status, row.total_tokens) == ("python", "success", done.usage.total)
    assert row.cost_usd == done.cost_usd
    assert len(list(log_dir.glob("*.json"))) == 1


async def test_completion_takes_messages_and_options():
    done = await llm_completion(
        [{"role": "user", "content": "a b"}], model="gpt-4o-mini", options={"temperature": 0, "api_base": "x"}
    )

    assert done.content == "Echo: a b"
    assert done.response.choices[0].message.content == "Echo: a b"


async def test_a_provider_failure_raises_and_is_recorded():
    with pytest.raises(ProviderError):
        await simple_llm_call_async("boom [[status:503]]", model="gpt-4o-mini")

    row = await Request.objects.aget()
    assert row.status == "error" and row.http_status == 502


async def test_an_unknown_model_raises_before_any_row():
    with pytest.raises(BadRequest):
        await simple_llm_call_async("hi", model="nope")

    assert await Request.objects.acount() == 0
