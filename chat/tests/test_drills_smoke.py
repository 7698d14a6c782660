"""Each fault drill of bench/drills at a tiny size, so the drills cannot silently rot.

The drills start their own upstream, gateway processes and database (SQLite, or PostgreSQL with
Redis when the suite itself runs on them); these tests only check that each drill runs and that
every promise it checks held. Full sizes and figures: docs/drills.md.
"""

from __future__ import annotations

import json

import httpx
import pytest
from django.conf import settings

from bench.drills import DRILLS, Options
from chat.models import Request
from chat.tests.live import live, live_gateway  # noqa: F401


@pytest.fixture
def suite_backends(monkeypatch: pytest.MonkeyPatch) -> dict:
    """The database kind and Redis URL the suite runs on; drills create their own databases beside it."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("postgresql"):
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        monkeypatch.setenv("DRILLS_PG_URL", f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/postgres")
        kind = "postgres"
    else:
        kind = "sqlite"
    cache = settings.CACHES["default"]
    redis = cache["LOCATION"] if cache["BACKEND"].endswith("RedisCache") else ""
    return {"db": kind, "redis": redis if isinstance(redis, str) else redis[0]}


def drill(name: str, backends: dict, **options: object):  # type: ignore[no-untyped-def]
    report = DRILLS[name](Options(db=backends["db"], redis=backends["redis"], **options))
    assert report.checks, "the drill checked nothing"
    assert report.ok, report.broken
    return report


def test_under_a_failing_upstream_every_call_has_one_row_with_the_status_the_client_saw(suite_backends):
    report = drill("faults", suite_backends, calls=24, concurrency=8)

    assert report.figures["rows"] == 24
    assert report.figures["mismatches"] == 0


def test_a_client_that_hangs_up_mid_stream_leaves_a_cancelled_row_and_no_open_upstream_stream(suite_backends):
    report = drill("disconnects", suite_backends, calls=16, concurrency=8)

    assert report.figures["cancelled_rows"] == report.figures["hung_up"] > 0
    assert report.figures["upstream_open_after"] == 0


def test_calls_answered_while_the_database_is_down_get_their_rows_back_from_import_logs(suite_backends):
    report = drill("outage", suite_backends, calls=12, concurrency=4, outage_seconds=2)

    assert report.figures["served_during"] > 0
    assert report.figures["rows_restored"] == report.figures["rows_missing_before_import"] > 0


def test_at_load_rows_equal_accepted_calls_and_budgets_hold(suite_backends):
    report = drill("scale", suite_backends, calls=60, concurrency=12)

    assert report.figures["rows"] == report.figures["accepted"]
    assert report.figures["refused"] > 0  # the budgets ran out during the run


def test_repeated_deterministic_requests_are_cache_hits_at_zero_cost(suite_backends):
    report = drill("cache", suite_backends, calls=20, concurrency=5)

    assert report.figures["hits"] == 18
    assert report.figures["upstream_calls"] == 2


# Found by the faults drill: a provider answering a stream request with a body that is not a stream.


@pytest.mark.parametrize("endpoint", ["/llm/chat", "/v1/chat/completions"])
def test_a_stream_that_carries_no_answer_is_an_error_row_not_an_empty_success(live, owner_key, endpoint):  # noqa: F811
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi [[malformed]]"}], "stream": True}

    response = httpx.post(live + endpoint, json=body, headers={"Authorization": f"Bearer {owner_key}"}, timeout=30)

    frames = [f.removeprefix("data: ") for f in response.text.split("\n\n") if f and f != "data: [DONE]"]
    assert json.loads(frames[-1])["error"]["code"] == "provider_error"
    row = Request.objects.get()
    assert (row.status, row.http_status, row.error_type, row.response) == ("error", 502, "EmptyStream", "")
