"""Pure helpers for usage figures: periods, local days, time buckets and percentile maths. No ORM, no I/O."""

from __future__ import annotations

import bisect
import math
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal

COST_PLACES = 10  # Request.cost_usd's decimal places; rollups keep cost as an integer of 1e-10 USD
# Latency buckets in ms, each about 20% wider than the one before: bucket i is [BOUNDS[i], BOUNDS[i + 1]).
LATENCY_BOUNDS = sorted({0, *(int(1.2**i) for i in range(75))})


class PeriodError(ValueError):
    """A period parameter that cannot be understood; `param` names it."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def parse_moment(text: str, *, zone: tzinfo, param: str, end: bool = False) -> datetime:
    """An ISO date or date-time as an aware datetime; a bare date is the start of that local day,
    or with `end` the start of the next one, so `until=2025-01-31` includes the 31st."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if end:
                day += timedelta(days=1)
            return local_start(day, zone)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise PeriodError(
            f"'{text}' is not an ISO 8601 date or date-time (2025-01-31 or 2025-01-31T12:00:00Z).", param
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def local_start(day: date, zone: tzinfo) -> datetime:
    """The first instant of a local day."""
    return datetime.combine(day, time.min).replace(tzinfo=zone)


def local_day(moment: datetime, zone: tzinfo) -> date:
    return moment.astimezone(zone).date()


def split_period(
    since: datetime,
    until: datetime,
    rolled_until: date | None,
    partial_until: datetime | None,
    zone: tzinfo,
) -> tuple[tuple[date, date] | None, list[tuple[datetime, datetime]]]:
    """Split [since, until) into rolled local days [first, end) and the ranges to read from the rows.

    Days before `rolled_until` are rolled whole; the day `rolled_until` holds the rows created before
    `partial_until`, and counts as rolled when the period runs at least that far.
    """
    if since >= until:
        return None, []
    if rolled_until is None:
        return None, [(since, until)]
    first = local_day(since, zone)
    if local_start(first, zone) < since:
        first += timedelta(days=1)
    end = min(local_day(until, zone), rolled_until)
    tail = local_start(end, zone)
    if end == rolled_until and partial_until is not None and until >= partial_until and first <= rolled_until:
        end, tail = rolled_until + timedelta(days=1), partial_until
    if first >= end:
        return None, [(since, until)]
    raw = []
    if since < local_start(first, zone):
        raw.append((since, local_start(first, zone)))
    if tail < until:
        raw.append((tail, until))
    return (first, end), raw


def days_between(since: datetime, until: datetime, zone: tzinfo) -> list[date]:
    """Every local day that [since, until) touches."""
    if until <= since:
        return []
    day, last = local_day(since, zone), local_day(until - timedelta(microseconds=1), zone)
    days = []
    while day <= last:
        days.append(day)
        day += timedelta(days=1)
    return days


def hours_between(since: datetime, until: datetime, zone: tzinfo) -> list[datetime]:
    """Every local hour that [since, until) touches, as aware datetimes at the start of the hour."""
    if until <= since:
        return []
    hour = since.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    hours = []
    while hour < until:
        hours.append(hour)
        # Step in UTC so a DST change neither repeats nor skips an hour.
        hour = (hour.astimezone(UTC) + timedelta(hours=1)).astimezone(zone)
    return hours


def cost_from_units(units: int | None) -> Decimal:
    """An integer of 1e-10 USD as exact Decimal dollars."""
    return Decimal(int(units or 0)).scaleb(-COST_PLACES)


def percentile_position(p: float, n: int) -> tuple[int, float]:
    """The 0-based rank below the p-th percentile of n sorted values and the fraction towards the next one,
    as PostgreSQL's percentile_cont places it."""
    position = p * (n - 1)
    low = math.floor(position)
    return low, position - low


def percentile_cont(p: float, n: int, low_value: float, high_value: float | None) -> float:
    """Interpolate between the values at ranks `low` and `low + 1`, as percentile_cont does."""
    _, fraction = percentile_position(p, n)
    if high_value is None or fraction == 0:
        return float(low_value)
    return float(low_value) + (float(high_value) - float(low_value)) * fraction


def latency_bucket(ms: int) -> int:
    """The bucket of a latency: the last bound not above it."""
    return bisect.bisect_right(LATENCY_BOUNDS, ms) - 1


def bucket_holding(counts: list[tuple[int, int]], rank: int) -> tuple[int, int]:
    """The bucket of `counts` ((bucket, count) in bucket order) holding the 0-based `rank`, and how many
    rows come before it."""
    before = 0
    for bucket, count in counts:
        if rank < before + count:
            return bucket, before
        before += count
    raise ValueError("rank beyond the counted rows")


def ratio(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0
