"""Budgets and rate limits, checked before a call is sent and settled after it.

Every call first reserves what it may cost; it is refused when the spend of its window, plus the
reservations of the calls in flight, plus its own reservation would pass a budget. When it ends,
the reservation is released and the real cost added to the spend. Overspend is so bounded by the
calls already in flight, and only by the part of their cost their reservation did not foresee.

Counters are integers of 1e-10 USD (the precision of `Request.cost_usd`), so they stay exact. A
window's spend is read from the rows (`SUM(cost_usd)`) at most every `SPEND_REFRESH_SECONDS`
and kept up to date in between by adding each call's cost: it agrees with the rows by construction.

Counters live in Redis when the cache is Redis (one Lua script per admission: one round trip,
atomic across every process), in this process's memory otherwise. A Redis that stops answering
degrades to per-process counters with a warning rather than refusing every call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import redis
import redis.asyncio as aredis
from django.conf import settings
from django.db.models import BigIntegerField, DecimalField, ExpressionWrapper, F, Sum, Value
from django.db.models.functions import Cast, Round
from django.utils import timezone

from chat import llm
from chat.catalog import ModelEntry
from chat.db import run_db
from chat.errors import BudgetExceeded, RateLimited
from chat.models import Application, Request, UserBudget
from chat.pricing import Usage, cost_of
from chat.services.keys import Caller

logger = logging.getLogger(__name__)

UNITS_PER_USD = 10**10  # the counters' unit: 1e-10 USD, the precision of Request.cost_usd
SPEND_REFRESH_SECONDS = 30  # a window's spend is re-read from the rows at least this often
LOOKUP_SECONDS = 10.0  # user and application budgets are cached per process this long
# A call that names no max_tokens reserves this many completion tokens.
DEFAULT_COMPLETION_TOKENS = 1024
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators of each message
MEDIA_PART_TOKENS = 1000  # an image or audio part of a message, whatever its size in bytes
REDIS_CONNECTIONS = 64  # per process: more concurrent calls wait for a connection instead of opening one each
PREFIX = "gw:lim:"
PERIOD_WORDS = {"day": "daily", "month": "monthly", "total": "total"}


@dataclass(frozen=True)
class Budget:
    """One spending limit that applies to a call: a key's, an application's or a user's."""

    scope: str  # key, application or user
    ident: str  # the key's id, the application's name or the user id
    label: str  # how a message names it
    budget_usd: Decimal
    period: str  # day, month or total

    def window(self, now: datetime) -> tuple[str, datetime | None, datetime | None]:
        """The window containing `now`: its tag, its start (None for total) and when it resets."""
        local = timezone.localtime(now)
        if self.period == "day":
            start = local.replace(hour=0, minute=0, second=0, microsecond=0)
            return "d" + start.strftime("%Y%m%d"), start, start + timedelta(days=1)
        if self.period == "month":
            start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            following = (start + timedelta(days=32)).replace(day=1)
            return "m" + start.strftime("%Y%m"), start, following
        return "t", None, None

    def counters(self, now: datetime) -> tuple[str, str]:
        """Names of the spend and reservation counters of the window containing `now`."""
        tag = self.window(now)[0]
        # The free-form ident comes last so that no ident can be mistaken for another scope's.
        return f"spend:{self.scope}:{tag}:{self.ident}", f"held:{self.scope}:{tag}:{self.ident}"

    @property
    def budget_units(self) -> int:
        return usd_to_units(self.budget_usd)


@dataclass(frozen=True)
class BudgetUsage:
    """Where a budget stands: what its window has spent and what calls in flight hold."""

    budget: Budget
    spent_usd: Decimal
    reserved_usd: Decimal
    resets_at: datetime | None

    @property
    def remaining_usd(self) -> Decimal:
        return max(Decimal(0), self.budget.budget_usd - self.spent_usd - self.reserved_usd)


@dataclass
class Admission:
    """What a call was let in with: the spend reserved for it, to be settled when it ends."""

    caller: Caller
    reserved_usd: Decimal = Decimal(0)
    reserved_tokens: int = 0
    budgets: tuple[Budget, ...] = ()
    counters: tuple[tuple[str, str], ...] = ()  # (spend, held) per budget, fixed at admission
    settled: bool = False
    store: Any = field(default=None, repr=False)


def usd_to_units(amount: Decimal) -> int:
    return int((Decimal(amount) * UNITS_PER_USD).to_integral_value())


def units_to_usd(units: int) -> Decimal:
    return (Decimal(units) / UNITS_PER_USD).quantize(Decimal(1) / UNITS_PER_USD)


# --- Admission and settlement -------------------------------------------------------------


async def limits_admit(*, caller: Caller, entry: ModelEntry, messages: list[dict], max_tokens: int | None) -> Admission:
    """Let a call in, or raise RateLimited / BudgetExceeded before any provider is asked."""
    budgets = await budgets_for(caller)
    if not budgets and not caller.rpm and not caller.tpm:
        return Admission(caller=caller)  # nothing to count: no cache round trip at all
    reserved_usd, prompt_tokens = reservation_of(entry, messages, max_tokens) if budgets else (Decimal(0), 0)
    now = timezone.now()
    counters = tuple(b.counters(now) for b in budgets)
    store = await _store()
    seeds: dict[int, int] = {}
    for _ in range(3):
        try:
            verdict = await store.admit(
                rate=_rate_keys(caller),
                rpm=caller.rpm or 0,
                tpm=caller.tpm or 0,
                window_ms=_window_ms(),
                counters=counters,
                budget_units=[b.budget_units for b in budgets],
                seeds=seeds,
                reserve=usd_to_units(reserved_usd),
            )
        except _StoreDown:
            store = _fallback()
            continue
        if verdict[0] != "seed":
            break
        seeds = await _seed(budgets, [int(i) for i in verdict[1:]], now)
    else:
        raise RuntimeError("the spend counters could not be seeded")  # pragma: no cover - needs a flapping cache
    _refuse(verdict, caller, budgets, reserved_usd, now)
    return Admission(
        caller=caller,
        reserved_usd=reserved_usd,
        reserved_tokens=prompt_tokens,
        budgets=budgets,
        counters=counters,
        store=store,
    )


async def limits_settle(admission: Admission, *, cost_usd: Decimal, tokens: int) -> None:
    """Replace the reservation with what the call really cost."""
    caller = admission.caller
    if admission.settled or (not admission.budgets and not caller.tpm):
        return
    admission.settled = True
    args = dict(
        tpm_key=_rate_keys(caller)[1] if caller.tpm else "",
        tokens=tokens,
        window_ms=_window_ms(),
        counters=admission.counters,
        released=usd_to_units(admission.reserved_usd),
        cost=usd_to_units(cost_usd),
    )
    try:
        await admission.store.settle(**args)
    except _StoreDown:
        await _fallback().settle(**args)


def reservation_of(entry: ModelEntry, messages: list[dict], max_tokens: int | None) -> tuple[Decimal, int]:
    """What a call may cost, priced before it is sent: its prompt estimated, its answer at `max_tokens`."""
    prices = llm.prices_for(entry)
    prompt = prompt_tokens_estimate(messages)
    if prices is None or (not prices.input and not prices.output):
        return Decimal(0), prompt
    completion = DEFAULT_COMPLETION_TOKENS if max_tokens is None else max_tokens
    return cost_of(Usage(prompt=prompt, completion=completion), prices), prompt


def prompt_tokens_estimate(messages: list[dict]) -> int:
    """A quick, generous token count: two UTF-8 bytes make a token, an image or audio part 1000.

    Real tokenizers give about a token per 4 bytes of English, 3 of code, Cyrillic or CJK, 2.6 of emoji;
    only base64-like noise goes below 2. Counting exactly (litellm.token_counter) costs ~0.2 ms a call.
    """
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS
        for name, value in message.items():
            if name == "content" and isinstance(value, list):
                for part in value:
                    text = part.get("text") if isinstance(part, dict) else None
                    total += _byte_tokens(text) if isinstance(text, str) else MEDIA_PART_TOKENS
            elif isinstance(value, str):
                total += _byte_tokens(value)
            elif value is not None:
                total += _byte_tokens(json.dumps(value, default=str))
    return total


def _byte_tokens(text: str) -> int:
    return -(-len(text.encode("utf-8", "replace")) // 2)


def _rate_keys(caller: Caller) -> tuple[str, str]:
    return f"rpm:{caller.key_id}", f"tpm:{caller.key_id}"


def _window_ms() -> int:
    return int(settings.RATE_LIMIT_WINDOW_SECONDS * 1000)


def _refuse(verdict: list, caller: Caller, budgets: tuple[Budget, ...], reserved: Decimal, now: datetime) -> None:
    kind = verdict[0]
    if kind == "ok":
        return
    if kind in ("rpm", "tpm"):
        wait_ms = int(verdict[1])
        retry = max(1, math.ceil((wait_ms if wait_ms > 0 else _window_ms()) / 1000))
        window = settings.RATE_LIMIT_WINDOW_SECONDS
        what = f"{caller.rpm} requests" if kind == "rpm" else f"{caller.tpm} tokens"
        raise RateLimited(
            f"Rate limit reached: this key allows {what} per {window} seconds. Retry in {retry} s.",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(retry)},
            details={"limit": kind, "retry_after_seconds": retry},
        )
    budget = budgets[int(verdict[1]) - 1]
    spent, held = units_to_usd(int(verdict[2])), units_to_usd(int(verdict[3]))
    resets_at = budget.window(now)[2]
    period = PERIOD_WORDS.get(budget.period, budget.period)
    if spent >= budget.budget_usd:
        why = f"it has spent ${_money(spent)} of its ${_money(budget.budget_usd)} {period} budget"
    else:
        why = (
            f"this call may cost up to ${_money(reserved)} and only ${_money(budget.budget_usd - spent - held)} "
            f"of its ${_money(budget.budget_usd)} {period} budget is left"
            + (f" (${_money(held)} is held by calls in flight)" if held else "")
        )
    when = f" It resets at {resets_at.isoformat()}." if resets_at else " Raise the budget to continue."
    headers = {"Retry-After": str(max(1, math.ceil((resets_at - now).total_seconds())))} if resets_at else {}
    raise BudgetExceeded(
        f"Budget exceeded for {budget.label}: {why}.{when}",
        headers=headers,
        details={
            "scope": budget.scope,
            "period": budget.period,
            "budget_usd": str(budget.budget_usd),
            "spent_usd": str(spent),
            "reserved_usd": str(held),
            "resets_at": resets_at.isoformat() if resets_at else None,
        },
    )


def _money(amount: Decimal) -> str:
    """Dollars as people read them, with the digits small amounts need."""
    text = f"{amount.normalize():f}"
    whole, _, cents = text.partition(".")
    return f"{whole}.{(cents + '00')[: max(2, len(cents))]}"


# --- Which budgets apply ------------------------------------------------------------------

_lookups: dict[tuple[str, str], tuple[float, tuple[Decimal, str] | None]] = {}
_LOOKUP_MAX = 10_000


async def budgets_for(caller: Caller) -> tuple[Budget, ...]:
    """The budgets a call of `caller` counts against: its key's, its application's, its user's."""
    budgets = []
    if caller.key_id is not None and caller.key_budget_usd is not None:
        label = f"key {caller.key_prefix}…"
        budgets.append(Budget("key", str(caller.key_id), label, caller.key_budget_usd, caller.key_budget_period))
    app_budget: tuple[Decimal, str] | None = None
    if caller.key_id is not None:
        app_budget = (caller.app_budget_usd, caller.app_budget_period) if caller.app_budget_usd is not None else None
    elif caller.application_id:
        app_budget = await _lookup("application", caller.application_id)
    if app_budget:
        label = f"application '{caller.application_id}'"
        budgets.append(Budget("application", caller.application_id, label, *app_budget))
    if caller.user_id:
        user_budget = await _lookup("user", caller.user_id)
        if user_budget:
            budgets.append(Budget("user", caller.user_id, f"user '{caller.user_id}'", *user_budget))
    return tuple(budgets)


async def _lookup(kind: str, name: str) -> tuple[Decimal, str] | None:
    now = time.monotonic()
    # Most deployments set no user budget at all: one cached "any?" saves a query per new user.
    if not await _cached(("any", kind), now, _any_budget, kind):
        return None
    return await _cached((kind, name), now, _budget_row, kind, name)


async def _cached(key: tuple[str, str], now: float, fn: Any, *args: Any) -> Any:
    hit = _lookups.get(key)
    if hit and hit[0] > now:
        return hit[1]
    value = await run_db(fn, *args)
    if len(_lookups) >= _LOOKUP_MAX:
        _lookups.clear()  # callers choose user ids: the cache must not grow without end
    _lookups[key] = (now + LOOKUP_SECONDS, value)
    return value


def _any_budget(kind: str) -> bool:
    if kind == "user":
        return UserBudget.objects.exists()
    return Application.objects.filter(budget_usd__isnull=False).exists()


def _budget_row(kind: str, name: str) -> tuple[Decimal, str] | None:
    if kind == "user":
        row = UserBudget.objects.filter(user_id=name).values_list("budget_usd", "budget_period").first()
    else:
        row = (
            Application.objects.filter(name=name, budget_usd__isnull=False)
            .values_list("budget_usd", "budget_period")
            .first()
        )
    return (row[0], row[1]) if row else None


# --- Spend from the rows ------------------------------------------------------------------

SCOPE_FIELDS = {"key": "key_id", "application": "application_id", "user": "user_id"}


def spend_units(*, scope: str, ident: str, since: datetime | None) -> int:
    """Exact spend of one scope since `since`, in counter units, summed by the database."""
    rows = Request.objects.filter(**{SCOPE_FIELDS[scope]: ident})
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    # SQLite keeps decimals as floats: each cost is rounded back to whole units before the sum,
    # which is then an exact integer sum on every database.
    units = ExpressionWrapper(
        F("cost_usd") * Value(UNITS_PER_USD), output_field=DecimalField(max_digits=30, decimal_places=0)
    )
    total = rows.aggregate(units=Sum(Cast(Round(units), BigIntegerField())))["units"]
    return int(total or 0)


def spend_usd(*, scope: str, ident: str, since: datetime | None) -> Decimal:
    """Exact spend of one scope since `since`, from the rows."""
    return units_to_usd(spend_units(scope=scope, ident=ident, since=since))


async def _seed(budgets: tuple[Budget, ...], missing: list[int], now: datetime) -> dict[int, int]:
    def read() -> dict[int, int]:
        out = {}
        for index in missing:
            budget = budgets[index - 1]
            out[index] = spend_units(scope=budget.scope, ident=budget.ident, since=budget.window(now)[1])
        return out

    return await run_db(read)


async def budget_usage(caller: Caller) -> list[BudgetUsage]:
    """Where each budget of `caller` stands now, as the admission sees it."""
    budgets = await budgets_for(caller)
    now = timezone.now()
    counters = tuple(b.counters(now) for b in budgets)
    store = await _store()
    values = await store.read(counters)
    missing = [i + 1 for i, (spent, _) in enumerate(values) if spent is None]
    if missing:
        seeds = await _seed(budgets, missing, now)
        await store.seed({counters[i - 1][0]: v for i, v in seeds.items()})
        values = await store.read(counters)
    return [
        BudgetUsage(b, units_to_usd(spent or 0), units_to_usd(held or 0), b.window(now)[2])
        for b, (spent, held) in zip(budgets, values, strict=True)
    ]


# --- Counter stores -----------------------------------------------------------------------


class _StoreDown(Exception):
    """The shared counter store did not answer."""


def _held_ttl_ms() -> int:
    # A reservation outlives any call; one left by a process that died frees itself after this.
    longest = settings.LLM_TIMEOUT_SECONDS * (settings.LLM_MAX_RETRIES + 1) * 2
    return int(max(600.0, longest) * 1000)


class LocalStore:
    """Counters in this process's memory: exact, but each process counts only its own calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = {}
        self._expires: dict[str, float] = {}

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._expires.clear()

    def _get(self, key: str, now: float) -> int | None:
        expires = self._expires.get(key)
        if expires is not None and expires <= now:
            self._values.pop(key, None)
            self._expires.pop(key, None)
        return self._values.get(key)

    def _ttl_ms(self, key: str, now: float) -> int:
        expires = self._expires.get(key)
        return -1 if expires is None else int((expires - now) * 1000)

    def _expire(self, key: str, ms: int, now: float) -> None:
        self._expires[key] = now + ms / 1000

    async def admit(
        self,
        *,
        rate: tuple[str, str],
        rpm: int,
        tpm: int,
        window_ms: int,
        counters: tuple[tuple[str, str], ...],
        budget_units: list[int],
        seeds: dict[int, int],
        reserve: int,
    ) -> list:
        with self._lock:
            now = time.monotonic()
            for index, units in seeds.items():
                spend = counters[index - 1][0]
                if self._get(spend, now) is None:
                    self._values[spend] = units
                    self._expire(spend, SPEND_REFRESH_SECONDS * 1000, now)
            rpm_key, tpm_key = rate
            if rpm and (self._get(rpm_key, now) or 0) >= rpm:
                return ["rpm", self._ttl_ms(rpm_key, now)]
            if tpm and (self._get(tpm_key, now) or 0) >= tpm:
                return ["tpm", self._ttl_ms(tpm_key, now)]
            missing = [i + 1 for i, (spend, _) in enumerate(counters) if self._get(spend, now) is None]
            if missing:
                return ["seed", *missing]
            for i, ((spend, held), budget) in enumerate(zip(counters, budget_units, strict=True)):
                spent, holding = self._get(spend, now) or 0, self._get(held, now) or 0
                if spent + holding >= budget or spent + holding + reserve > budget:
                    return ["budget", i + 1, spent, holding]
            if rpm:
                if self._get(rpm_key, now) is None:
                    self._values[rpm_key] = 0
                    self._expire(rpm_key, window_ms, now)
                self._values[rpm_key] += 1
            for _, held in counters:
                self._values[held] = (self._get(held, now) or 0) + reserve
                self._expire(held, _held_ttl_ms(), now)
            return ["ok"]

    async def settle(
        self, *, tpm_key: str, tokens: int, window_ms: int, counters: tuple, released: int, cost: int
    ) -> None:
        with self._lock:
            now = time.monotonic()
            if tpm_key and tokens > 0:
                if self._get(tpm_key, now) is None:
                    self._values[tpm_key] = 0
                    self._expire(tpm_key, window_ms, now)
                self._values[tpm_key] += tokens
            for spend, held in counters:
                left = (self._get(held, now) or 0) - released
                if left > 0:
                    self._values[held] = left
                else:
                    self._values.pop(held, None)
                    self._expires.pop(held, None)
                if self._get(spend, now) is not None:
                    self._values[spend] += cost

    async def read(self, counters: tuple[tuple[str, str], ...]) -> list[tuple[int | None, int | None]]:
        with self._lock:
            now = time.monotonic()
            return [(self._get(spend, now), self._get(held, now)) for spend, held in counters]

    async def seed(self, values: dict[str, int]) -> None:
        with self._lock:
            now = time.monotonic()
            for key, units in values.items():
                if self._get(key, now) is None:
                    self._values[key] = units
                    self._expire(key, SPEND_REFRESH_SECONDS * 1000, now)


# KEYS: rpm, tpm, then (spend, held) per budget.
# ARGV: rpm, tpm, window ms, reservation, held ttl ms, spend ttl ms, n, then (budget, seed or "") per budget.
ADMIT_LUA = """
local rpm, tpm, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[7])
local reserve = tonumber(ARGV[4])
for i = 1, n do
  local seed = ARGV[7 + 2 * i]
  if seed ~= '' then redis.call('SET', KEYS[1 + 2 * i], seed, 'NX', 'PX', ARGV[6]) end
end
if rpm > 0 and tonumber(redis.call('GET', KEYS[1]) or '0') >= rpm then
  return {'rpm', redis.call('PTTL', KEYS[1])}
end
if tpm > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') >= tpm then
  return {'tpm', redis.call('PTTL', KEYS[2])}
end
local missing = {'seed'}
for i = 1, n do
  if redis.call('EXISTS', KEYS[1 + 2 * i]) == 0 then missing[#missing + 1] = i end
end
if #missing > 1 then return missing end
for i = 1, n do
  local spent = redis.call('GET', KEYS[1 + 2 * i])
  local held = redis.call('GET', KEYS[2 + 2 * i]) or '0'
  local total = tonumber(spent) + tonumber(held)
  local budget = tonumber(ARGV[6 + 2 * i])
  if total >= budget or total + reserve > budget then return {'budget', i, spent, held} end
end
if rpm > 0 and redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
for i = 1, n do
  redis.call('INCRBY', KEYS[2 + 2 * i], ARGV[4])
  redis.call('PEXPIRE', KEYS[2 + 2 * i], ARGV[5])
end
return {'ok'}
"""

# KEYS: tpm (or a dummy), then (spend, held) per budget. ARGV: tokens, window ms, released, cost, n.
SETTLE_LUA = """
local tokens, n = tonumber(ARGV[1]), tonumber(ARGV[5])
if tokens > 0 then
  redis.call('INCRBY', KEYS[1], ARGV[1])
  if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
for i = 1, n do
  if redis.call('DECRBY', KEYS[2 * i + 1], ARGV[3]) <= 0 then redis.call('DEL', KEYS[2 * i + 1]) end
  if redis.call('EXISTS', KEYS[2 * i]) == 1 then redis.call('INCRBY', KEYS[2 * i], ARGV[4]) end
end
return 1
"""


class RedisStore:
    """Counters in Redis, shared by every process; each admission or settlement is one Lua script."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        # redis.asyncio connections belong to the event loop that opened them.
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _client(self) -> tuple[Any, Any, Any]:
        loop = asyncio.get_running_loop()
        found = self._clients.get(loop)
        if found is None:
            pool = aredis.BlockingConnectionPool.from_url(
                self.url, max_connections=REDIS_CONNECTIONS, timeout=5, socket_timeout=2.0, socket_connect_timeout=1.0
            )
            client = aredis.Redis(connection_pool=pool)
            found = (client, client.register_script(ADMIT_LUA), client.register_script(SETTLE_LUA))
            self._clients[loop] = found
        return found

    def _k(self, name: str) -> str:
        return self.prefix + name

    async def _run(self, script: Any, keys: list[str], args: list) -> Any:
        try:
            return await script(keys=keys, args=args)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            raise _StoreDown(str(exc)) from exc

    async def admit(
        self,
        *,
        rate: tuple[str, str],
        rpm: int,
        tpm: int,
        window_ms: int,
        counters: tuple[tuple[str, str], ...],
        budget_units: list[int],
        seeds: dict[int, int],
        reserve: int,
    ) -> list:
        _, admit, _ = self._client()
        keys = [self._k(rate[0]), self._k(rate[1])]
        args: list = [rpm, tpm, window_ms, reserve, _held_ttl_ms(), SPEND_REFRESH_SECONDS * 1000, len(counters)]
        for i, ((spend, held), budget) in enumerate(zip(counters, budget_units, strict=True)):
            keys += [self._k(spend), self._k(held)]
            args += [budget, seeds.get(i + 1, "")]
        verdict = await self._run(admit, keys, args)
        return [v.decode() if isinstance(v, bytes) else v for v in verdict]

    async def settle(
        self, *, tpm_key: str, tokens: int, window_ms: int, counters: tuple, released: int, cost: int
    ) -> None:
        _, _, settle = self._client()
        keys = [self._k(tpm_key or "tpm:none")]
        for spend, held in counters:
            keys += [self._k(spend), self._k(held)]
        await self._run(settle, keys, [tokens if tpm_key else 0, window_ms, released, cost, len(counters)])

    async def read(self, counters: tuple[tuple[str, str], ...]) -> list[tuple[int | None, int | None]]:
        client, _, _ = self._client()
        names = [self._k(n) for pair in counters for n in pair]
        values = await client.mget(names) if names else []
        ints = [None if v is None else int(v) for v in values]
        return list(zip(ints[::2], ints[1::2], strict=True))

    async def seed(self, values: dict[str, int]) -> None:
        client, _, _ = self._client()
        for key, units in values.items():
            await client.set(self._k(key), units, nx=True, px=SPEND_REFRESH_SECONDS * 1000)

    def clear(self) -> None:
        client = redis.Redis.from_url(self.url, socket_timeout=2.0, socket_connect_timeout=2.0)
        try:
            names = list(client.scan_iter(match=self.prefix + "*", count=1000))
            if names:
                client.delete(*names)
        finally:
            client.close()


_local = LocalStore()
_redis: RedisStore | None = None
_warned_at = 0.0


def _redis_config() -> tuple[str, str] | None:
    cache = settings.CACHES.get("default", {})
    if not cache.get("BACKEND", "").endswith("RedisCache"):
        return None
    location = cache.get("LOCATION")
    url = location[0] if isinstance(location, (list, tuple)) else location
    return (url, f"{cache.get('KEY_PREFIX', '')}{PREFIX}") if url else None


async def _store() -> LocalStore | RedisStore:
    global _redis
    config = _redis_config()
    if config is None:
        return _local
    if _redis is None or (_redis.url, _redis.prefix) != config:
        _redis = RedisStore(*config)
    return _redis


def _fallback() -> LocalStore:
    global _warned_at
    now = time.monotonic()
    if now - _warned_at > 30:
        _warned_at = now
        logger.warning("Redis does not answer: rate limits and budgets are counted per process until it does")
    return _local


def limits_reset() -> None:
    """Forget every counter and cached budget (tests, and operators after a manual correction)."""
    _lookups.clear()
    _local.clear()
    config = _redis_config()
    if config is not None:
        try:
            RedisStore(*config).clear()
        except Exception:  # noqa: BLE001 - a Redis that does not answer holds nothing to forget
            logger.warning("could not clear the rate-limit counters in Redis")
