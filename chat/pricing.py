"""Pure pricing: token usage times per-token prices, in exact Decimal dollars."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

MILLION = Decimal(1_000_000)
COST_PLACES = Decimal("0.0000000001")  # matches Request.cost_usd


@dataclass(frozen=True)
class Usage:
    prompt: int = 0
    completion: int = 0
    cached: int = 0  # of the prompt tokens, served from the provider's prompt cache
    reasoning: int = 0  # of the completion tokens, spent on reasoning

    @property
    def total(self) -> int:
        return self.prompt + self.completion

    def as_dict(self) -> dict[str, int]:
        return {"prompt": self.prompt, "completion": self.completion, "total": self.total}


@dataclass(frozen=True)
class Prices:
    """USD per token."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    reasoning: Decimal | None = None

    @classmethod
    def per_million(cls, input: Decimal, output: Decimal, cached_input: Decimal | None = None) -> Prices:
        return cls(
            input=input / MILLION,
            output=output / MILLION,
            cached_input=None if cached_input is None else cached_input / MILLION,
        )

    def input_per_million(self) -> Decimal:
        return (self.input * MILLION).normalize()

    def output_per_million(self) -> Decimal:
        return (self.output * MILLION).normalize()


def decimal_price(value: float | int | str | None) -> Decimal | None:
    """A price from litellm's map (a float) as the Decimal its decimal text says."""
    return None if value is None else Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def cost_of(usage: Usage, prices: Prices | None) -> Decimal:
    """What a call cost: cached prompt tokens and reasoning tokens at their own rates where the map has them."""
    if prices is None:
        return Decimal(0)
    cached = min(usage.cached, usage.prompt)
    reasoning = min(usage.reasoning, usage.completion)
    cached_rate = prices.input if prices.cached_input is None else prices.cached_input
    reasoning_rate = prices.output if prices.reasoning is None else prices.reasoning
    cost = (
        (usage.prompt - cached) * prices.input
        + cached * cached_rate
        + (usage.completion - reasoning) * prices.output
        + reasoning * reasoning_rate
    )
    return cost.quantize(COST_PLACES)
