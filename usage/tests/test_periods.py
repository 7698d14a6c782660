from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from usage.periods import (
    LATENCY_BOUNDS,
    PeriodError,
    bucket_holding,
    cost_from_units,
    days_between,
    hours_between,
    latency_bucket,
    parse_moment,
    percentile_cont,
    split_period,
)

PARIS = ZoneInfo("Europe/Paris")


def at(text: str, zone=UTC) -> datetime:  # noqa: ANN001
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def test_a_bare_date_is_the_start_of_that_local_day_and_until_includes_it():
    assert parse_moment("2025-03-10", zone=PARIS, param="since") == at("2025-03-10T00:00", PARIS)
    assert parse_moment("2025-03-10", zone=PARIS, param="until", end=True) == at("2025-03-11T00:00", PARIS)


def test_a_date_time_keeps_its_offset_and_a_naive_one_is_local():
    assert parse_moment("2025-03-10T12:30:00Z", zone=PARIS, param="since") == at("2025-03-10T12:30")
    assert parse_moment("2025-03-10T12:30:00+02:00", zone=PARIS, param="since").utcoffset() == timedelta(hours=2)
    assert parse_moment("2025-03-10 12:30", zone=PARIS, param="since") == at("2025-03-10T12:30", PARIS)


@pytest.mark.parametrize("text", ["yesterday", "2025-02-30", "10/03/2025", "2025-03-10T25:00", ""])
def test_anything_else_is_a_period_error_naming_the_parameter(text):
    with pytest.raises(PeriodError) as raised:
        parse_moment(text, zone=UTC, param="until")
    assert raised.value.param == "until"


def test_a_period_splits_into_rolled_days_and_raw_edges():
    span, raw = split_period(at("2025-03-01T06:00"), at("2025-03-09T18:00"), date(2025, 3, 20), None, UTC)

    assert span == (date(2025, 3, 2), date(2025, 3, 9))
    assert raw == [(at("2025-03-01T06:00"), at("2025-03-02T00:00")), (at("2025-03-09T00:00"), at("2025-03-09T18:00"))]


def test_todays_partial_rollup_is_used_when_the_period_reaches_past_it():
    partial = at("2025-03-09T17:50")

    span, raw = split_period(at("2025-03-01T00:00"), at("2025-03-09T18:00"), date(2025, 3, 9), partial, UTC)
    assert span == (date(2025, 3, 1), date(2025, 3, 10))
    assert raw == [(partial, at("2025-03-09T18:00"))]

    # A period that stops before the partial rollup reads today from the rows.
    span, raw = split_period(at("2025-03-01T00:00"), at("2025-03-09T12:00"), date(2025, 3, 9), partial, UTC)
    assert span == (date(2025, 3, 1), date(2025, 3, 9))
    assert raw == [(at("2025-03-09T00:00"), at("2025-03-09T12:00"))]


def test_without_rollups_or_whole_days_everything_comes_from_the_rows():
    since, until = at("2025-03-01T06:00"), at("2025-03-01T18:00")

    assert split_period(since, until, None, None, UTC) == (None, [(since, until)])
    assert split_period(since, until, date(2025, 3, 20), None, UTC) == (None, [(since, until)])
    assert split_period(until, until, date(2025, 3, 20), None, UTC) == (None, [])


def test_days_and_hours_follow_the_local_clock_across_a_dst_change():
    # Paris moved its clocks forward at 02:00 on 2025-03-30: that day has 23 hours.
    since, until = at("2025-03-29T00:00", PARIS), at("2025-03-31T00:00", PARIS)

    assert days_between(since, until, PARIS) == [date(2025, 3, 29), date(2025, 3, 30)]
    hours = hours_between(since, until, PARIS)
    assert len(hours) == 47
    assert len({h.astimezone(UTC) for h in hours}) == 47


def test_percentile_cont_interpolates_between_neighbours():
    assert percentile_cont(0.5, 4, 200, 300) == 250.0
    assert percentile_cont(0.95, 4, 300, 400) == pytest.approx(385.0)
    assert percentile_cont(0.5, 1, 700, None) == 700.0


def test_each_latency_falls_in_the_bucket_whose_bounds_hold_it():
    for ms in [0, 1, 2, 9, 10, 11, 999, 1000, 1001, 65_000, 10**7]:
        bucket = latency_bucket(ms)
        assert LATENCY_BOUNDS[bucket] <= ms
        assert bucket == len(LATENCY_BOUNDS) - 1 or ms < LATENCY_BOUNDS[bucket + 1]


def test_the_bucket_holding_a_rank_counts_the_rows_before_it():
    counts = [(3, 2), (5, 4), (9, 1)]

    assert bucket_holding(counts, 0) == (3, 0)
    assert bucket_holding(counts, 2) == (5, 2)
    assert bucket_holding(counts, 6) == (9, 6)
    with pytest.raises(ValueError):
        bucket_holding(counts, 7)


def test_cost_units_are_exact_dollars():
    assert cost_from_units(21_000) == Decimal("0.0000021")
    assert cost_from_units(None) == 0
    assert cost_from_units(10**20 + 1) == Decimal("10000000000.0000000001")
