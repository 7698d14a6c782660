"""Keeping the daily rollups exact: roll closed days and today so far, roll dirty days again, rebuild on demand.

State: every local day before `rolled_until` is rolled whole; the day `rolled_until` itself is
rolled for the rows created before `partial_until` (today, up to a few minutes ago), so a read
takes only the last minutes from the Request rows.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models import BigIntegerField, Count, F, IntegerField, Sum, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Round
from django.utils import timezone

from chat.models import Request
from usage.models import DirtyDay, LatencyDay, ModelDay, RollupState, UserDay
from usage.periods import LATENCY_BOUNDS, local_day, local_start

logger = logging.getLogger(__name__)

# A call's row is written when it ends, minutes after its `created_at`: rows are rolled only once
# they are this old. A row that still arrives later marks its day dirty (see mark_late_row).
SETTLE = timedelta(minutes=10)
# Today's rollup is summed again at most this often; the minutes since come from the rows.
PARTIAL_EVERY = timedelta(minutes=2)
COST_SCALE = 10**10  # Request.cost_usd has 10 decimal places
FIGURES = ("requests", "prompt_tokens", "completion_tokens", "total_tokens", "cost_units", "latency_ms_sum")


def cost_units() -> Sum:
    """SUM of cost_usd as an exact integer of 1e-10 USD (SQLite keeps decimals as floats, PostgreSQL exactly)."""
    return Sum(Cast(Round(F("cost_usd") * Value(COST_SCALE)), BigIntegerField()))


def figures() -> dict:
    """The aggregates of raw rows that match the rollups' columns."""
    return {
        "requests": Count("id"),
        "prompt_tokens": Sum("prompt_tokens"),
        "completion_tokens": Sum("completion_tokens"),
        "total_tokens": Sum("total_tokens"),
        "cost_units": cost_units(),
        "latency_ms_sum": Sum("latency_ms"),
    }


def _bucket_sql(column: str, low: int, high: int) -> str:
    """Nested CASE finding the bucket in [low, high] by halving: about 7 comparisons a row, not 70."""
    if low == high:
        return str(low)
    middle = (low + high + 1) // 2
    below, above = _bucket_sql(column, low, middle - 1), _bucket_sql(column, middle, high)
    return f"CASE WHEN {column} < {LATENCY_BOUNDS[middle]} THEN {below} ELSE {above} END"


@functools.cache
def _bucket_expression(column: str) -> str:
    return _bucket_sql(column, 0, len(LATENCY_BOUNDS) - 1)


def latency_bucket_of() -> RawSQL:
    """The latency bucket of a Request row, in SQL (usage.periods.latency_bucket in Python).

    Built as text once: the same CASE as an ORM expression costs tens of milliseconds to compile per query.
    """
    column = f"{connection.ops.quote_name(Request._meta.db_table)}.{connection.ops.quote_name('latency_ms')}"
    return RawSQL(_bucket_expression(column), (), output_field=IntegerField())


def local_date(moment: datetime) -> date:
    """The day of `moment` in TIME_ZONE."""
    return local_day(moment, timezone.get_default_timezone())


def day_start(day: date) -> datetime:
    """The first instant of a local day in TIME_ZONE (23 or 25 hours long on a DST change)."""
    return local_start(day, timezone.get_default_timezone())


def _zone() -> str:
    return timezone.get_default_timezone_name()


def _roll_day(day: date, until: datetime | None = None) -> None:
    """Replace the rollups of one local day with sums of its rows (those created before `until`, if given)."""
    for table in (UserDay, ModelDay, LatencyDay):
        table.objects.filter(day=day).delete()
    end = day_start(day + timedelta(days=1))
    rows = Request.objects.filter(created_at__gte=day_start(day), created_at__lt=min(end, until or end)).order_by()
    per_user = rows.values("application_id", "user_id", "model", "status").annotate(**figures())
    _insert(UserDay, day, per_user)
    per_model = (
        UserDay.objects.filter(day=day)
        .order_by()
        .values("application_id", "model", "status")
        .annotate(**{name: Sum(name) for name in FIGURES})
    )
    _insert(ModelDay, day, per_model)
    latencies = (
        rows.annotate(bucket=latency_bucket_of()).values("application_id", "model", "bucket").annotate(n=Count("id"))
    )
    _insert(LatencyDay, day, latencies, columns=["application_id", "model", "bucket", "requests"])


def _insert(table, day: date, queryset, columns: list[str] | None = None) -> None:  # noqa: ANN001
    """INSERT INTO `table` (day, …) SELECT the grouped `queryset`: the sums never pass through Python."""
    select, params = queryset.query.sql_with_params()
    names = ", ".join(columns or [*queryset.query.values_select, *queryset.query.annotation_select])
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table._meta.db_table} (day, {names}) SELECT %s, sub.* FROM ({select}) sub",
            (connection.ops.adapt_datefield_value(day), *params),
        )


def rollup_target(now: datetime | None = None) -> datetime:
    """Rows created before this instant are old enough to be rolled."""
    return ((now or timezone.now()) - SETTLE).replace(second=0, microsecond=0)


def _first_day() -> date | None:
    first = Request.objects.order_by("created_at").values_list("created_at", flat=True).first()
    return local_date(first) if first else None


def rollup_state(*, now: datetime | None = None) -> RollupState | None:
    """The rollups' reach when nothing is left to roll (no dirty day, today recent enough), else None."""
    state = RollupState.objects.first()
    target = rollup_target(now)
    fresh = (
        state is not None
        and state.time_zone == _zone()
        and state.rolled_until == local_date(target)
        and state.partial_until is not None
        and target - state.partial_until < PARTIAL_EVERY
        and not DirtyDay.objects.exists()
    )
    return state if fresh else None


def rollup_refresh(*, now: datetime | None = None) -> RollupState:
    """Roll the days that closed since the last refresh, the dirty ones and today so far; returns the state."""
    state = rollup_state(now=now)
    if state is not None:
        return state
    target = rollup_target(now)
    today = local_date(target)
    with transaction.atomic():
        state = RollupState.objects.select_for_update().first() or RollupState.objects.create(time_zone=_zone())
        if state.time_zone != _zone():
            # The day boundaries moved: every day is summed again in the new time zone.
            for table in (UserDay, ModelDay, LatencyDay):
                table.objects.all().delete()
            state.time_zone, state.rolled_until, state.partial_until = _zone(), None, None
        dirty = list(DirtyDay.objects.values_list("id", "day"))
        start = min(state.rolled_until or _first_day() or today, today)
        days = {day for _, day in dirty if day < start}
        day = start
        while day < today:
            days.add(day)
            day += timedelta(days=1)
        for day in sorted(days):
            _roll_day(day)
        state.rolled_days = len(days)
        stale = (
            state.partial_until is None or state.rolled_until != today or target - state.partial_until >= PARTIAL_EVERY
        )
        if stale or any(day == today for _, day in dirty):
            _roll_day(today, until=target)
            state.partial_until = target
        DirtyDay.objects.filter(id__in=[pk for pk, _ in dirty]).delete()
        state.rolled_until = today
        state.save()
    return state


def rollup_rebuild() -> int:
    """Forget every rollup and sum every day again from the rows; returns how many whole days were rolled."""
    with transaction.atomic():
        for table in (UserDay, ModelDay, LatencyDay, DirtyDay):
            table.objects.all().delete()
        RollupState.objects.all().delete()
    return rollup_refresh().rolled_days


def rollup_mark_dirty(days: Iterable[date]) -> None:
    """Have these local days rolled again before the next read (their rows were added or removed)."""
    state = RollupState.objects.first()
    if state is None or state.rolled_until is None:
        return  # nothing rolled yet: the first refresh sums every day anyway
    for day in sorted(set(days)):
        if day <= state.rolled_until:
            DirtyDay.objects.get_or_create(day=day)


def mark_late_row(sender, instance: Request, **kwargs) -> None:  # noqa: ANN001 - signal receiver
    """post_save of a Request: a row old enough to be in a rollup already marks its day dirty.

    Most rows arrive seconds after their `created_at` and cost one comparison here; only late
    ones (an import, a very long stream) touch the database, and a failure never fails the call.
    A row younger than SETTLE / 2 cannot be missed: no rollup reaches past now - SETTLE.
    """
    if instance.created_at is None or instance.created_at >= timezone.now() - SETTLE / 2:
        return
    try:
        with transaction.atomic():
            DirtyDay.objects.get_or_create(day=local_date(instance.created_at))
    except DatabaseError:
        logger.warning("could not mark %s dirty; run `manage.py usage_rollup --rebuild`", instance.created_at)


def rollup_forget_before(cutoff: datetime) -> None:
    """After rows older than `cutoff` were deleted: drop the rollups of the days before it, roll its day again."""
    day = local_date(cutoff)
    with transaction.atomic():
        for table in (UserDay, ModelDay, LatencyDay):
            table.objects.filter(day__lt=day).delete()
        rollup_mark_dirty([day])
