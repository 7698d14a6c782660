from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from chat.models import Request
from usage import selectors
from usage.models import DirtyDay, LatencyDay, ModelDay, UserDay
from usage.periods import latency_bucket
from usage.rollups import rollup_rebuild, rollup_refresh
from usage.tests.conftest import make_request

pytestmark = pytest.mark.django_db


def expected(rows: list[Request]) -> dict:
    """The figures of `rows`, summed in Python from the row objects."""
    return {
        "requests": len(rows),
        "errors": sum(r.status == "error" for r in rows),
        "cancelled": sum(r.status == "cancelled" for r in rows),
        "prompt_tokens": sum(r.prompt_tokens for r in rows),
        "completion_tokens": sum(r.completion_tokens for r in rows),
        "total_tokens": sum(r.total_tokens for r in rows),
        "cost_usd": sum((r.cost_usd for r in rows), Decimal(0)),
        "latency_ms_sum": sum(r.latency_ms for r in rows),
    }


def actual(figures: selectors.Figures) -> dict:
    return {
        "requests": figures.requests,
        "errors": figures.errors,
        "cancelled": figures.cancelled,
        "prompt_tokens": figures.prompt_tokens,
        "completion_tokens": figures.completion_tokens,
        "total_tokens": figures.total_tokens,
        "cost_usd": figures.cost_usd,
        "latency_ms_sum": figures.latency_ms_sum,
    }


def within(rows: list[Request], since: datetime, until: datetime, **match: str) -> list[Request]:
    return [r for r in rows if since <= r.created_at < until and all(getattr(r, k) == v for k, v in match.items())]


def periods() -> list[tuple[datetime, datetime]]:
    now = timezone.now()
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        (now - timedelta(days=30), now),  # whole days from the rollups, the edges from the rows
        (midnight - timedelta(days=7), midnight),  # whole days only
        (midnight - timedelta(days=6, hours=5), midnight - timedelta(days=2, hours=3)),  # both edges partial
        (midnight, now + timedelta(hours=1)),  # today only: rows that are not rolled yet
        (now - timedelta(hours=20), now - timedelta(hours=10)),  # inside one or two days
    ]


@pytest.mark.parametrize("period", range(5))
def test_totals_equal_the_sums_over_the_rows(history, period):
    since, until = periods()[period]

    figures = selectors.usage_totals(selectors.usage_filter(since=since, until=until))

    assert actual(figures) == expected(within(history, since, until))


@pytest.mark.parametrize(
    "match",
    [
        {"user_id": "alice"},
        {"application_id": "globex"},
        {"model": "gpt-4o"},
        {"status": "error"},
        {"user_id": "bob", "application_id": "acme", "model": "claude-haiku-4-5"},
    ],
)
def test_filtered_totals_equal_the_sums_over_the_matching_rows(history, match):
    since, until = periods()[0]

    figures = selectors.usage_totals(selectors.usage_filter(since=since, until=until, **match))

    assert actual(figures) == expected(within(history, since, until, **match))


@pytest.mark.parametrize("by", ["model", "application_id", "user_id"])
def test_breakdowns_equal_the_sums_per_group(history, by):
    since, until = periods()[2]
    rows = within(history, since, until)
    groups = defaultdict(list)
    for row in rows:
        groups[getattr(row, by)].append(row)

    breakdown = selectors.usage_by(selectors.usage_filter(since=since, until=until), by)

    assert {key: actual(figures) for key, figures in breakdown} == {k: expected(v) for k, v in groups.items()}
    costs = [figures.cost_usd for _, figures in breakdown]
    assert costs == sorted(costs, reverse=True)


def test_a_breakdown_can_rank_by_requests_and_stop_at_a_limit(history):
    since, until = periods()[0]
    counts = defaultdict(int)
    for row in within(history, since, until):
        counts[row.user_id] += 1

    top = selectors.usage_by(selectors.usage_filter(since=since, until=until), "user_id", order="requests", limit=2)

    assert [(k, f.requests) for k, f in top] == sorted(counts.items(), key=lambda kv: -kv[1])[:2]


def test_the_daily_series_covers_every_day_and_equals_the_rows_of_each_day(history):
    since, until = periods()[0]
    zone = timezone.get_default_timezone()

    series = selectors.usage_series(selectors.usage_filter(since=since, until=until))

    days = [day for day, _ in series]
    assert days[0] == since.astimezone(zone).date() and days[-1] == until.astimezone(zone).date()
    assert len(days) == len(set(days)) == (days[-1] - days[0]).days + 1
    for day, figures in series:
        rows = [r for r in within(history, since, until) if r.created_at.astimezone(zone).date() == day]
        assert actual(figures) == expected(rows), day


def test_the_hourly_series_equals_the_rows_of_each_hour(history):
    now = timezone.now()
    since, until = now - timedelta(hours=30), now

    series = selectors.usage_series(selectors.usage_filter(since=since, until=until), interval="hour")

    assert len(series) in (30, 31)
    for hour, figures in series:
        rows = [r for r in within(history, since, until) if hour <= r.created_at < hour + timedelta(hours=1)]
        assert figures.requests == len(rows), hour
        assert figures.cost_usd == sum((r.cost_usd for r in rows), Decimal(0))


def test_an_empty_period_has_zero_figures_and_empty_days(db):
    now = timezone.now()
    f = selectors.usage_filter(since=now - timedelta(days=3), until=now)

    totals = selectors.usage_totals(f)

    assert (totals.requests, totals.cost_usd, totals.avg_latency_ms, totals.error_rate) == (0, Decimal(0), None, 0.0)
    assert selectors.usage_by(f, "model") == []
    assert selectors.usage_percentiles(f) == {None: {0.5: None, 0.95: None}}
    assert selectors.usage_percentiles(f, by="model") == {}
    series = selectors.usage_series(f)
    assert len(series) == 4 and all(figures.requests == 0 for _, figures in series)


def test_costs_add_up_exactly_where_floats_would_not(db):
    now = timezone.now()
    for days in range(6):
        for _ in range(7):
            make_request(created_at=now - timedelta(days=days, minutes=5), cost_usd=Decimal("0.1000000001"))

    figures = selectors.usage_totals(selectors.usage_filter(since=now - timedelta(days=10), until=now))

    assert figures.cost_usd == Decimal("4.2000000042")
    assert sum([0.1000000001] * 42) != 4.2000000042  # what a float sum would have answered


def reference_percentile(values: list[int], p: float) -> float:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont defines it."""
    ordered = sorted(values)
    position = p * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@pytest.mark.parametrize(
    ("latencies", "p50", "p95"),
    [
        ([100, 200, 300, 400], 250.0, 385.0),
        ([700], 700.0, 700.0),
        ([10, 30], 20.0, 29.0),
        ([5, 1, 4, 2, 3], 3.0, 4.8),
        ([1000, 1000, 1000, 9000], 1000.0, 7800.0),
    ],
)
def test_percentiles_of_small_known_sets_are_exact(db, latencies, p50, p95):
    now = timezone.now()
    for i, latency in enumerate(latencies):
        make_request(created_at=now - timedelta(days=i % 3, minutes=1), latency_ms=latency)
    make_request(created_at=now - timedelta(minutes=1), latency_ms=99999, model="gpt-4o")

    f = selectors.usage_filter(since=now - timedelta(days=5), until=now)
    by_model = selectors.usage_percentiles(f, by="model")

    assert by_model["gpt-4o-mini"] == {0.5: p50, 0.95: p95}
    assert by_model["gpt-4o"] == {0.5: 99999.0, 0.95: 99999.0}
    overall = selectors.usage_percentiles(f)[None]
    everything = [*latencies, 99999]
    assert overall == {p: round(reference_percentile(everything, p), 2) for p in (0.5, 0.95)}


def test_percentiles_follow_the_filter(history):
    since, until = periods()[2]
    rows = within(history, since, until, application_id="globex")

    result = selectors.usage_percentiles(
        selectors.usage_filter(since=since, until=until, application_id="globex"), by="user_id"
    )

    for user in ("alice", "bob", "carol"):
        latencies = [r.latency_ms for r in rows if r.user_id == user]
        assert result[user] == {p: round(reference_percentile(latencies, p), 2) for p in (0.5, 0.95)}


@pytest.mark.parametrize(("zone", "offset"), [("Asia/Tokyo", 9), ("America/New_York", -5)])
def test_days_follow_the_time_zone_at_their_boundaries(db, settings, zone, offset):
    settings.TIME_ZONE = zone
    tz = ZoneInfo(zone)
    today = timezone.localtime(timezone.now(), tz).date()
    day = today - timedelta(days=5)
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    make_request(created_at=midnight - timedelta(microseconds=1), cost_usd=Decimal("1"))  # the day before
    make_request(created_at=midnight, cost_usd=Decimal("2"))  # the first instant of `day`
    make_request(created_at=midnight + timedelta(hours=23, minutes=59), cost_usd=Decimal("4"))

    series = dict(
        selectors.usage_series(
            selectors.usage_filter(since=midnight - timedelta(days=1), until=midnight + timedelta(days=2))
        )
    )

    assert midnight.utcoffset() == timedelta(hours=offset)
    assert series[day - timedelta(days=1)].cost_usd == Decimal("1")
    assert series[day].cost_usd == Decimal("6")
    assert series[day + timedelta(days=1)].requests == 0
    assert ModelDay.objects.filter(day=day).get().requests == 2
    # A period that starts inside the day reads that part from the rows, in the same time zone.
    partial = selectors.usage_filter(since=midnight - timedelta(hours=1), until=midnight + timedelta(hours=1))
    assert dict(selectors.usage_series(partial)) == {
        day - timedelta(days=1): selectors.Figures(
            requests=1, cost_units=10**10, prompt_tokens=2, completion_tokens=3, total_tokens=5, latency_ms_sum=100
        ),
        day: selectors.Figures(
            requests=1, cost_units=2 * 10**10, prompt_tokens=2, completion_tokens=3, total_tokens=5, latency_ms_sum=100
        ),
    }


def test_a_late_row_for_a_rolled_day_is_counted_on_the_next_read(history):
    since, until = periods()[0]
    before = selectors.usage_totals(selectors.usage_filter(since=since, until=until))
    assert UserDay.objects.exists()

    late = make_request(created_at=timezone.now() - timedelta(days=4), cost_usd=Decimal("0.5"))

    assert DirtyDay.objects.count() == 1
    after = selectors.usage_totals(selectors.usage_filter(since=since, until=until))
    assert after.requests == before.requests + 1
    assert after.cost_usd == before.cost_usd + late.cost_usd
    assert not DirtyDay.objects.exists()


def test_a_rebuild_gives_the_same_rollups(history):
    rollup_refresh()
    first = sorted(UserDay.objects.values_list("day", "application_id", "user_id", "model", "status", "cost_units"))

    rollup_rebuild()

    assert (
        sorted(UserDay.objects.values_list("day", "application_id", "user_id", "model", "status", "cost_units"))
        == first
    )
    assert sum(ModelDay.objects.values_list("requests", flat=True)) == sum(
        UserDay.objects.values_list("requests", flat=True)
    )


def test_a_page_of_requests_is_the_newest_first_without_counting(history):
    since, until = periods()[0]
    rows = sorted(within(history, since, until, user_id="alice"), key=lambda r: (r.created_at, r.id), reverse=True)
    f = selectors.usage_filter(since=since, until=until, user_id="alice")

    first, more = selectors.requests_page(f, page=1, page_size=10)
    last, no_more = selectors.requests_page(f, page=(len(rows) + 9) // 10, page_size=10)

    assert [r.id for r in first] == [r.id for r in rows[:10]] and more
    assert [r.id for r in last] == [r.id for r in rows[(len(rows) - 1) // 10 * 10 :]] and not no_more


def test_the_sql_latency_bucket_matches_the_python_one(db):
    now = timezone.now()
    latencies = [0, 1, 9, 10, 11, 99, 100, 1469, 1470, 4387, 4388, 600_000, 10**7]
    for latency in latencies:
        make_request(created_at=now - timedelta(days=2), latency_ms=latency)

    rollup_refresh()

    buckets = dict(LatencyDay.objects.values_list("bucket", "requests"))
    expected_buckets = defaultdict(int)
    for latency in latencies:
        expected_buckets[latency_bucket(latency)] += 1
    assert buckets == expected_buckets


def test_a_row_written_late_for_today_is_counted_on_the_next_read(db):
    now = timezone.now()
    make_request(created_at=now - timedelta(hours=3))
    f = selectors.usage_filter(since=now - timedelta(days=1), until=now)
    assert f.partial_until is not None and selectors.usage_totals(f).requests == 1

    make_request(created_at=f.partial_until - timedelta(minutes=1))  # already inside today's rollup

    assert selectors.usage_totals(selectors.usage_filter(since=now - timedelta(days=1), until=now)).requests == 2


def test_a_percentile_reads_the_rows_when_the_bucket_counts_no_longer_match_them(db):
    now = timezone.now()
    for latency in (100, 120, 5000, 6000):
        make_request(created_at=now - timedelta(days=3), latency_ms=latency)
    f = selectors.usage_filter(since=now - timedelta(days=5), until=now)
    assert selectors.usage_percentiles(f)[None] == {0.5: 2560.0, 0.95: 5850.0}

    # A bulk delete marks no day dirty (prune_requests and usage_rollup --rebuild keep the rollups right).
    Request.objects.filter(latency_ms__gte=5000).delete()

    assert selectors.usage_percentiles(f)[None] == {0.5: 110.0, 0.95: 119.0}
