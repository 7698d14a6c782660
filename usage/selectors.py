"""Usage figures, computed in the database: totals, breakdowns, series, percentiles, pages of requests.

Whole local days that are already rolled up are read from the rollups (`usage.models`), the
rest of the period (today, a partial first or last day) from the Request rows; the two are
summed per group, so every figure equals the sum over the rows. Percentiles need the rows
themselves: exact counts per latency bucket say which bucket holds each percentile, and an ordered
LIMIT/OFFSET query reads only that bucket's rows (PostgreSQL's percentile_cont, or SQLite's ordered
OFFSET over a group's rows, where the buckets lack the filter: a user, a status).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from decimal import Decimal
from functools import reduce
from operator import or_

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone

from chat.models import Request
from usage.models import LatencyDay, ModelDay, UserDay
from usage.periods import (
    LATENCY_BOUNDS,
    bucket_holding,
    cost_from_units,
    days_between,
    hours_between,
    percentile_cont,
    percentile_position,
    ratio,
)
from usage.periods import split_period as _split_period
from usage.rollups import cost_units, latency_bucket_of, rollup_refresh

GROUPS = ("model", "application_id", "user_id")
ORDERS = ("cost", "requests", "tokens")
PERCENTILES = (0.5, 0.95)
MAX_UNION = 100  # models read in one percentile query (SQLite allows 500 compound SELECTs)
PROBES_PER_QUERY = 200


@dataclass(frozen=True)
class UsageFilter:
    """Which rows a figure covers: [since, until) and optional exact matches."""

    since: datetime
    until: datetime
    user_id: str | None = None
    application_id: str | None = None
    model: str | None = None
    status: str | None = None
    rolled_until: date | None = field(default=None, compare=False)  # set by `usage_filter`
    partial_until: datetime | None = field(default=None, compare=False)

    def dimensions(self) -> dict[str, str]:
        return {k: v for k in ("user_id", "application_id", "model", "status") if (v := getattr(self, k)) is not None}


def usage_filter(
    *,
    since: datetime,
    until: datetime,
    user_id: str | None = None,
    application_id: str | None = None,
    model: str | None = None,
    status: str | None = None,
) -> UsageFilter:
    """A filter ready for the selectors: brings the rollups up to date and notes how far they reach."""
    state = rollup_refresh()
    return UsageFilter(
        since=since,
        until=until,
        user_id=user_id,
        application_id=application_id,
        model=model,
        status=status,
        rolled_until=state.rolled_until,
        partial_until=state.partial_until,
    )


@dataclass
class Figures:
    """Summed figures of a set of requests."""

    requests: int = 0
    errors: int = 0
    cancelled: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_units: int = 0
    latency_ms_sum: int = 0

    def add(self, values: dict) -> Figures:
        for name in FIGURE_NAMES:
            value = values.get(name)
            if value:
                setattr(self, name, getattr(self, name) + int(value))
        return self

    @property
    def cost_usd(self) -> Decimal:
        return cost_from_units(self.cost_units)

    @property
    def avg_latency_ms(self) -> float | None:
        return round(self.latency_ms_sum / self.requests, 1) if self.requests else None

    @property
    def error_rate(self) -> float:
        return ratio(self.errors, self.requests)

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "cancelled": self.cancelled,
            "error_rate": self.error_rate,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": self.cost_usd,
            "avg_latency_ms": self.avg_latency_ms,
        }


FIGURE_NAMES = tuple(f.name for f in fields(Figures))


def _raw_aggregates() -> dict:
    return {
        "requests": Count("id"),
        "errors": Count("id", filter=Q(status=Request.Status.ERROR)),
        "cancelled": Count("id", filter=Q(status=Request.Status.CANCELLED)),
        "prompt_tokens": Sum("prompt_tokens"),
        "completion_tokens": Sum("completion_tokens"),
        "total_tokens": Sum("total_tokens"),
        "cost_units": cost_units(),
        "latency_ms_sum": Sum("latency_ms"),
    }


def _rolled_aggregates() -> dict:
    return {
        "requests": Sum("requests"),
        "errors": Sum("requests", filter=Q(status=Request.Status.ERROR)),
        "cancelled": Sum("requests", filter=Q(status=Request.Status.CANCELLED)),
        **{name: Sum(name) for name in ("prompt_tokens", "completion_tokens", "total_tokens")},
        "cost_units": Sum("cost_units"),
        "latency_ms_sum": Sum("latency_ms_sum"),
    }


def requests_in(f: UsageFilter) -> QuerySet[Request]:
    """Every Request row the filter covers."""
    return Request.objects.filter(created_at__gte=f.since, created_at__lt=f.until, **f.dimensions())


def _sources(f: UsageFilter, *, by_user: bool) -> tuple[QuerySet | None, QuerySet | None]:
    """The rollup rows of the whole rolled days, and the Request rows of the rest of the period."""
    zone = timezone.get_default_timezone()
    span, ranges = _split_period(f.since, f.until, f.rolled_until, f.partial_until, zone)
    rolled = raw = None
    if span is not None:
        table = UserDay if by_user or f.user_id is not None else ModelDay
        rolled = table.objects.filter(day__gte=span[0], day__lt=span[1], **f.dimensions()).order_by()
    if ranges:
        within = reduce(or_, (Q(created_at__gte=a, created_at__lt=b) for a, b in ranges))
        raw = Request.objects.filter(within, **f.dimensions()).order_by()
    return rolled, raw


def _collect(f: UsageFilter, *, rolled_keys: dict, raw_keys: dict, by_user: bool = False) -> dict[tuple, Figures]:
    """Figures per group, summed over the rollups and the raw rows; keys map a name to a field or expression."""
    rolled, raw = _sources(f, by_user=by_user)
    out: dict[tuple, Figures] = {}
    for queryset, keys, aggregates in ((rolled, rolled_keys, _rolled_aggregates()), (raw, raw_keys, _raw_aggregates())):
        if queryset is None:
            continue
        expressions = {k: v for k, v in keys.items() if not isinstance(v, str)}
        names = [k if not isinstance(v, str) else v for k, v in keys.items()]
        if expressions:
            queryset = queryset.annotate(**expressions)
        # Aliased: a rollup's columns have the names of the figures they sum.
        aliased = {f"sum_{name}": aggregate for name, aggregate in aggregates.items()}
        rows = queryset.values(*names).annotate(**aliased) if names else [queryset.aggregate(**aliased)]
        for row in rows:
            key = tuple(row[n] for n in names)
            out.setdefault(key, Figures()).add({name: row[f"sum_{name}"] for name in aggregates})
    return out


def usage_totals(f: UsageFilter) -> Figures:
    """Requests, errors, tokens, cost and latency of everything the filter covers."""
    return _collect(f, rolled_keys={}, raw_keys={}).get((), Figures())


def usage_by(f: UsageFilter, by: str, *, order: str = "cost", limit: int | None = None) -> list[tuple[str, Figures]]:
    """Figures per model, application or user, the largest first by cost, requests or tokens."""
    if by not in GROUPS:
        raise ValueError(f"by must be one of {GROUPS}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}")
    groups = _collect(f, rolled_keys={by: by}, raw_keys={by: by}, by_user=by == "user_id")
    sort = {
        "cost": lambda item: (item[1].cost_units, item[1].requests),
        "requests": lambda item: (item[1].requests, item[1].cost_units),
        "tokens": lambda item: (item[1].total_tokens, item[1].requests),
    }[order]
    ranked = sorted(((key[0], figures) for key, figures in groups.items()), key=lambda i: i[0])
    ranked.sort(key=sort, reverse=True)
    return ranked[:limit] if limit else ranked


def usage_distinct(f: UsageFilter, by: str) -> int:
    """How many distinct models, applications or users the filter covers."""
    return len(_collect(f, rolled_keys={by: by}, raw_keys={by: by}, by_user=by == "user_id"))


def usage_series(f: UsageFilter, *, interval: str = "day") -> list[tuple[date | datetime, Figures]]:
    """Figures per local day or hour (TIME_ZONE) over the whole period, empty buckets included."""
    zone = timezone.get_default_timezone()
    if interval == "day":
        groups = _collect(f, rolled_keys={"day": "day"}, raw_keys={"bucket": TruncDate("created_at", tzinfo=zone)})
        buckets = days_between(f.since, f.until, zone)
    elif interval == "hour":
        # Rollups are daily: an hourly series reads the rows (bounded by the caller's period).
        hourly = replace(f, rolled_until=None, partial_until=None)
        groups = _collect(hourly, rolled_keys={}, raw_keys={"bucket": TruncHour("created_at", tzinfo=zone)})
        buckets = hours_between(f.since, f.until, zone)
    else:
        raise ValueError("interval must be 'day' or 'hour'")
    return [(bucket, groups.get((bucket,), Figures())) for bucket in buckets]


def usage_percentiles(
    f: UsageFilter, *, by: str | None = None, ps: tuple[float, ...] = PERCENTILES
) -> dict[str | None, dict[float, float | None]]:
    """Latency percentiles (ms, interpolated as percentile_cont does) overall or per group, from the rows."""
    if by is not None and by not in GROUPS:
        raise ValueError(f"by must be one of {GROUPS}")
    rows = requests_in(f).order_by()
    if by != "user_id" and f.user_id is None and f.status is None:
        return _percentiles_by_bucket(f, rows, by, ps)
    # The latency buckets have no user or status: sort the rows (one user's are few).
    if connection.vendor == "postgresql":
        return _percentiles_postgresql(rows, by, ps)
    if by is None:
        counts = {None: rows.count()}
    else:
        counts = {row[by]: row["n"] for row in rows.values(by).annotate(n=Count("id"))}
    out = {}
    for key, n in counts.items():
        group = rows if by is None else rows.filter(**{by: key})
        out[key] = {p: _percentile_by_offset(group, p, n) for p in ps}
    return out


def _percentiles_postgresql(rows: QuerySet, by: str | None, ps: tuple[float, ...]) -> dict:
    columns = [by, "latency_ms"] if by else ["latency_ms"]
    inner, params = rows.values(*columns).query.sql_with_params()
    wanted = ", ".join(repr(float(p)) for p in ps)
    key = f"s.{connection.ops.quote_name(by)}" if by else "NULL"
    group = f" GROUP BY {key}" if by else ""
    sql = (
        f"SELECT {key}, percentile_cont(ARRAY[{wanted}]::float8[]) WITHIN GROUP (ORDER BY s.latency_ms), COUNT(*)"
        f" FROM ({inner}) s{group}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        result = cursor.fetchall()
    out = {}
    for key_value, values, n in result:
        if n:
            out[key_value] = {p: round(v, 2) for p, v in zip(ps, values, strict=True)}
    if by is None and not out:
        out[None] = dict.fromkeys(ps)
    return out


def _latency_histogram(f: UsageFilter, by: str | None) -> dict[str | None, dict[str, dict[int, int]]]:
    """Exact row counts per group, model and latency bucket: rolled days from LatencyDay, the rest from rows."""
    zone = timezone.get_default_timezone()
    span, ranges = _split_period(f.since, f.until, f.rolled_until, f.partial_until, zone)
    keys = [by, "model"] if by and by != "model" else ["model"]
    sources = []
    if span is not None:
        rolled = LatencyDay.objects.filter(day__gte=span[0], day__lt=span[1], **f.dimensions()).order_by()
        sources.append(rolled.values(*keys, "bucket").annotate(n=Sum("requests")))
    if ranges:
        within = reduce(or_, (Q(created_at__gte=a, created_at__lt=b) for a, b in ranges))
        raw = Request.objects.filter(within, **f.dimensions()).order_by().annotate(bucket=latency_bucket_of())
        sources.append(raw.values(*keys, "bucket").annotate(n=Count("id")))
    out: dict[str | None, dict[str, dict[int, int]]] = {}
    for source in sources:
        for row in source:
            group = row[by] if by else None
            buckets = out.setdefault(group, {}).setdefault(row["model"], {})
            buckets[row["bucket"]] = buckets.get(row["bucket"], 0) + row["n"]
    return out


@dataclass(frozen=True)
class _Probe:
    """Where one percentile of one group lies: the rows to read and the bucket the answer must fall in."""

    group: str | None
    p: float
    n: int
    rows: QuerySet  # the group's rows with a latency from the bucket's lower bound on
    offset: int  # rank of the percentile's lower neighbour among `rows`
    lower: int
    bucket_end: int | None


def _percentiles_by_bucket(f: UsageFilter, rows: QuerySet, by: str | None, ps: tuple[float, ...]) -> dict:
    """The bucket counts say which bucket holds each percentile's rank, so the rows to sort are one
    bucket's, read per model through the (model, created_at, latency_ms, application_id) index; every group's
    every percentile is then read in one statement."""
    probes: list[_Probe] = []
    for group, models in _latency_histogram(f, by).items():
        counts: dict[int, int] = {}
        for buckets in models.values():
            for bucket, n in buckets.items():
                counts[bucket] = counts.get(bucket, 0) + n
        ordered = sorted((b, n) for b, n in counts.items() if n)
        total = sum(n for _, n in ordered)
        if not total:
            continue
        scope = rows if by is None else rows.filter(**{by: group})
        probes += [_probe(group, scope, list(models), ordered, p, total) for p in ps]
    found = _read_probes(probes)
    out: dict[str | None, dict[float, float | None]] = {}
    for i, probe in enumerate(probes):
        values = found.get(i, [])
        low, fraction = percentile_position(probe.p, probe.n)
        missing_neighbour = fraction > 0 and low + 1 < probe.n and len(values) < 2
        outside = values and (
            values[0] < probe.lower or (probe.bucket_end is not None and values[0] >= probe.bucket_end)
        )
        if not values or outside or missing_neighbour:
            # The counts and the rows disagree (a row written this instant): sort the whole group instead.
            group_rows = rows if by is None else rows.filter(**{by: probe.group})
            value = _percentile_by_offset(group_rows, probe.p, group_rows.count())
        else:
            value = round(percentile_cont(probe.p, probe.n, values[0], values[1] if len(values) > 1 else None), 2)
        out.setdefault(probe.group, {})[probe.p] = value
    if by is None and None not in out:
        out[None] = dict.fromkeys(ps)
    return out


def _probe(group: str | None, rows: QuerySet, models: list[str], ordered: list[tuple[int, int]], p: float, n: int):  # noqa: ANN202
    low, _ = percentile_position(p, n)
    bucket, before = bucket_holding(ordered, low)
    lower = LATENCY_BOUNDS[bucket]
    later = [b for b, _ in ordered if b > bucket]
    # The next value may sit in the next non-empty bucket: read up to that bucket's end.
    upper = LATENCY_BOUNDS[later[0] + 1] if later and later[0] + 1 < len(LATENCY_BOUNDS) else None
    scope = rows.filter(latency_ms__gte=lower)
    if upper is not None:
        scope = scope.filter(latency_ms__lt=upper)
    if len(models) <= MAX_UNION:
        # Model by model, so each part is a range of the index on (model, created_at, …).
        parts = [scope.filter(model=model).order_by().values_list("latency_ms") for model in models]
        scope = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    else:
        scope = scope.order_by().values_list("latency_ms")
    bucket_end = LATENCY_BOUNDS[bucket + 1] if bucket + 1 < len(LATENCY_BOUNDS) else None
    return _Probe(group, p, n, scope, low - before, lower, bucket_end)


def _read_probes(probes: list[_Probe]) -> dict[int, list[int]]:
    """The two values at each probe's offset, for all probes in one statement (a query each costs more in
    Python than in SQLite)."""
    found: dict[int, list[int]] = {}
    for start in range(0, len(probes), PROBES_PER_QUERY):
        selects, params = [], []
        for i, probe in enumerate(probes[start : start + PROBES_PER_QUERY], start):
            sql, part_params = probe.rows.query.sql_with_params()
            selects.append(
                f"SELECT {i} AS k, v FROM (SELECT latency_ms AS v FROM ({sql}) AS b ORDER BY 1 LIMIT 2 OFFSET %s) AS o"
            )
            params += [*part_params, probe.offset]
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(selects), params)
            for k, v in cursor.fetchall():
                found.setdefault(k, []).append(v)
    return {k: sorted(v) for k, v in found.items()}


def _percentile_by_offset(rows: QuerySet, p: float, n: int) -> float | None:
    """The p-th percentile of `n` rows from one ordered LIMIT 2 OFFSET query."""
    if n == 0:
        return None
    low, _ = percentile_position(p, n)
    if p <= 0.5:
        values = list(rows.order_by("latency_ms").values_list("latency_ms", flat=True)[low : low + 2])
        low_value, high_value = values[0], values[1] if len(values) > 1 else None
    else:
        # Counted from the top, SQLite's sorter keeps only the top (1 - p) of the rows, not the bottom p.
        top = n - 1 - low
        values = list(rows.order_by("-latency_ms").values_list("latency_ms", flat=True)[max(top - 1, 0) : top + 1])
        low_value, high_value = (values[0], None) if top == 0 else (values[1], values[0])
    return round(percentile_cont(p, n, low_value, high_value), 2)


def requests_page(f: UsageFilter, *, page: int = 1, page_size: int = 20) -> tuple[list[Request], bool]:
    """One page of the covered rows, newest first, and whether another page follows (no count)."""
    start = (page - 1) * page_size
    rows = list(
        requests_in(f)
        .defer("messages", "response", "metadata")
        .order_by("-created_at", "-id")[start : start + page_size + 1]
    )
    return rows[:page_size], len(rows) > page_size


def figures_of(rows: QuerySet[Request]) -> Figures:
    """The figures of any set of Request rows, summed by the database (for filters the rollups cannot take)."""
    return Figures().add(rows.order_by().aggregate(**_raw_aggregates()))


def usage_dimension_values(field: str) -> list[str]:
    """Every model or application ever seen: the small rollup table, plus the rows written since its last roll."""
    if field not in ("model", "application_id"):
        raise ValueError("field must be 'model' or 'application_id'")
    state = rollup_refresh()
    values = set(ModelDay.objects.order_by().values_list(field, flat=True).distinct())
    if state.partial_until is not None:
        recent = Request.objects.filter(created_at__gte=state.partial_until).order_by()
        values |= set(recent.values_list(field, flat=True).distinct())
    return sorted(values)
