"""Keeping the daily rollups exact: roll closed days, roll dirty days again, rebuild on demand."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models import BigIntegerField, Count, F, Sum, Value
from django.db.models.functions import Cast, Round
from django.utils import timezone

from chat.models import Request
from usage.models import DirtyDay, ModelDay, RollupState, UserDay
from usage.periods import local_day, local_start

logger = logging.getLogger(__name__)

# A call's row is written when the call ends, up to a few minutes after its `created_at`:
# a day is rolled only once this long has passed since it ended.
SETTLE = timedelta(minutes=20)
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


def local_date(moment: datetime) -> date:
    """The day of `moment` in TIME_ZONE."""
    return local_day(moment, timezone.get_default_timezone())


def day_start(day: date) -> datetime:
    """The first instant of a local day in TIME_ZONE (23 or 25 hours long on a DST change)."""
    return local_start(day, timezone.get_default_timezone())


def closed_until(now: datetime | None = None) -> date:
    """The first local day that may still receive rows; every day before it is closed."""
    return local_date((now or timezone.now()) - SETTLE)


def _zone() -> str:
    return timezone.get_default_timezone_name()


def _sql(queryset) -> tuple[str, tuple]:  # noqa: ANN001 - a QuerySet
    return queryset.query.sql_with_params()


def _roll_day(day: date) -> None:
    """Replace the rollups of one local day with sums of its rows."""
    UserDay.objects.filter(day=day).delete()
    ModelDay.objects.filter(day=day).delete()
    rows = (
        Request.objects.filter(created_at__gte=day_start(day), created_at__lt=day_start(day + timedelta(days=1)))
        .order_by()
        .values("application_id", "user_id", "model", "status")
        .annotate(**figures())
    )
    select, params = _sql(rows)
    columns = ", ".join(["application_id", "user_id", "model", "status", *FIGURES])
    day_param = connection.ops.adapt_datefield_value(day)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {UserDay._meta.db_table} (day, {columns}) SELECT %s, sub.* FROM ({select}) sub",
            (day_param, *params),
        )
    per_model = (
        UserDay.objects.filter(day=day)
        .order_by()
        .values("application_id", "model", "status")
        .annotate(**{name: Sum(name) for name in FIGURES})
    )
    select, params = _sql(per_model)
    columns = ", ".join(["application_id", "model", "status", *FIGURES])
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ModelDay._meta.db_table} (day, {columns}) SELECT %s, sub.* FROM ({select}) sub",
            (day_param, *params),
        )


def _first_day() -> date | None:
    first = Request.objects.order_by("created_at").values_list("created_at", flat=True).first()
    return local_date(first) if first else None


def rollup_is_fresh(*, now: datetime | None = None) -> bool:
    """True when every closed day is rolled and no rolled day is dirty (two small reads)."""
    state = RollupState.objects.first()
    return (
        state is not None
        and state.time_zone == _zone()
        and state.rolled_until is not None
        and state.rolled_until >= closed_until(now)
        and not DirtyDay.objects.exists()
    )


def rollup_refresh(*, now: datetime | None = None) -> int:
    """Roll the days that closed since the last refresh and the dirty ones; returns how many days were rolled."""
    if rollup_is_fresh(now=now):
        return 0
    until = closed_until(now)
    rolled = 0
    with transaction.atomic():
        state = RollupState.objects.select_for_update().first() or RollupState.objects.create(time_zone=_zone())
        if state.time_zone != _zone():
            # The day boundaries moved: every day is summed again in the new time zone.
            UserDay.objects.all().delete()
            ModelDay.objects.all().delete()
            state.time_zone, state.rolled_until = _zone(), None
        dirty = list(DirtyDay.objects.values_list("id", "day"))
        start = state.rolled_until or _first_day() or until
        days = {day for _, day in dirty if day < start}
        day = start
        while day < until:
            days.add(day)
            day += timedelta(days=1)
        for day in sorted(days):
            _roll_day(day)
            rolled += 1
        DirtyDay.objects.filter(id__in=[pk for pk, _ in dirty]).delete()
        state.rolled_until = max(start, until)
        state.save()
    return rolled


def rollup_rebuild() -> int:
    """Forget every rollup and sum every closed day again from the rows."""
    with transaction.atomic():
        UserDay.objects.all().delete()
        ModelDay.objects.all().delete()
        DirtyDay.objects.all().delete()
        RollupState.objects.all().delete()
    return rollup_refresh()


def rollup_mark_dirty(days: Iterable[date]) -> None:
    """Have these local days rolled again before the next read (their rows were added or removed)."""
    state = RollupState.objects.first()
    if state is None or state.rolled_until is None:
        return  # nothing rolled yet: the first refresh sums every day anyway
    for day in sorted(set(days)):
        if day < state.rolled_until:
            DirtyDay.objects.get_or_create(day=day)


def mark_late_row(sender, instance: Request, **kwargs) -> None:  # noqa: ANN001 - signal receiver
    """post_save of a Request: a row for a day that may already be rolled marks that day dirty.

    Most rows arrive seconds after their `created_at` and cost one comparison here; only late
    ones (an import, a very long stream) touch the database, and a failure never fails the call.
    """
    if instance.created_at is None or instance.created_at >= timezone.now() - SETTLE / 2:
        return
    try:
        with transaction.atomic():
            DirtyDay.objects.get_or_create(day=local_date(instance.created_at))
    except DatabaseError:
        logger.warning("could not mark %s dirty; run `manage.py usage_rollup --rebuild`", instance.created_at)
