from __future__ import annotations

from decimal import Decimal

import litellm

from chat import llm
from chat.catalog import ModelEntry
from chat.pricing import Prices, Usage, cost_of


def test_plain_usage_is_priced_per_token_exactly():
    prices = Prices.per_million(Decimal("0.15"), Decimal("0.60"))

    assert cost_of(Usage(prompt=1000, completion=500), prices) == Decimal("0.00045")


def test_cached_prompt_tokens_are_priced_at_the_cache_rate():
    prices = Prices.per_million(Decimal("1"), Decimal("2"), cached_input=Decimal("0.5"))

    # 600 uncached at 1, 400 cached at 0.5, 100 out at 2 (per million)
    assert cost_of(Usage(prompt=1000, completion=100, cached=400), prices) == Decimal("0.001")


def test_no_prices_cost_nothing():
    assert cost_of(Usage(prompt=10, completion=10), None) == 0


def test_map_prices_agree_with_litellm_including_cached_and_reasoning_tokens():
    usage = litellm.Usage(
        prompt_tokens=1200,
        completion_tokens=800,
        total_tokens=2000,
        prompt_tokens_details={"cached_tokens": 1000},
        completion_tokens_details={"reasoning_tokens": 300},
    )
    for model in ("gpt-4o-mini", "gpt-4.1", "o4-mini", "gemini/gemini-2.5-flash"):
        ours = cost_of(llm.usage_of(usage), llm.map_prices(model))
        prompt_cost, completion_cost = litellm.cost_per_token(model=model, usage_object=usage)
        assert abs(float(ours) - (prompt_cost + completion_cost)) < 1e-12, model


def test_a_catalog_override_replaces_the_map_price():
    entry = ModelEntry(name="cheap", provider="openai", litellm_model="gpt-4o", input_cost_per_million=Decimal("1"))

    prices = llm.prices_for(entry)
    assert prices.input_per_million() == 1
    assert prices.output_per_million() == 10  # from the map
