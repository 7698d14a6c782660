from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from chat.models import Request
from usage.tests.conftest import make_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def calls(db) -> list[Request]:
    """alice in acme (three models, one error) and in globex; bob in acme; one call of alice's 40 days ago."""
    now = timezone.now()
    rows = [
        make_request(created_at=now - timedelta(days=2), latency_ms=100, cost_usd=Decimal("0.0000021000")),
        make_request(created_at=now - timedelta(days=1), latency_ms=300, model="gpt-4o", cost_usd=Decimal("0.25")),
        make_request(created_at=now - timedelta(hours=1), latency_ms=200, model="gpt-4o", cost_usd=Decimal("0.1")),
        make_request(created_at=now - timedelta(minutes=5), status="error", latency_ms=400, cost_usd=Decimal(0)),
        make_request(created_at=now - timedelta(days=3), application_id="globex", cost_usd=Decimal("7")),
        make_request(created_at=now - timedelta(days=3), user_id="bob", cost_usd=Decimal("3")),
        make_request(created_at=now - timedelta(days=40), cost_usd=Decimal("100")),
    ]
    return rows


def get(client: Client, path: str, **params):
    return client.get(path, params)


def test_a_key_sees_its_applications_user_over_the_last_30_days(api, calls):
    response = get(api, "/api/user/alice/usage")

    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == "alice"
    summary = body["summary"]
    assert summary["total_requests"] == 4  # not globex's call, not the one 40 days ago
    assert summary["total_tokens"] == 20
    assert summary["total_cost_usd"] == "0.3500021000"
    assert summary["avg_response_time"] == 0.25
    assert (summary["apps_used"], summary["models_used"]) == (1, 2)
    assert (summary["errors"], summary["error_rate"]) == (1, 0.25)
    assert (summary["p50_latency_ms"], summary["p95_latency_ms"]) == (250.0, 385.0)
    assert body["usage_by_application"] == [
        {
            "application_id": "acme",
            "requests": 4,
            "errors": 1,
            "cancelled": 0,
            "error_rate": 0.25,
            "prompt_tokens": 8,
            "completion_tokens": 12,
            "total_tokens": 20,
            "cost_usd": "0.3500021000",
            "avg_latency_ms": 250.0,
        }
    ]
    assert [(m["model"], m["requests"], m["cost_usd"]) for m in body["usage_by_model"]] == [
        ("gpt-4o", 2, "0.3500000000"),
        ("gpt-4o-mini", 2, "0.0000021000"),
    ]
    assert len(body["series"]) == 30
    assert sum(day["requests"] for day in body["series"]) == 4
    assert [r["request_id"] for r in body["recent_requests"]] == [
        str(r.id) for r in (calls[3], calls[2], calls[1], calls[0])
    ]
    recent = body["recent_requests"][0]
    assert (recent["status"], recent["tokens"], recent["cost_usd"]) == (
        "error",
        {"prompt": 2, "completion": 3, "total": 5},
        "0.0000000000",
    )
    assert "messages" not in recent and "response" not in recent


def test_since_until_model_and_application_filters_narrow_the_figures(api, calls):
    today = timezone.localdate()
    body = get(
        api,
        "/api/user/alice/usage",
        since=(today - timedelta(days=60)).isoformat(),
        until=today.isoformat(),
        model="gpt-4o-mini",
        application_id="acme",
    ).json()

    assert body["summary"]["total_requests"] == 3  # the 40-day-old call is in, gpt-4o's are out
    assert body["summary"]["total_cost_usd"] == "100.0000021000"
    assert body["filters"] == {"model": "gpt-4o-mini", "application_id": "acme"}
    assert len(body["series"]) == 61  # a bare `until` date includes that whole day


def test_recent_requests_come_a_page_at_a_time(api, calls):
    first = get(api, "/api/user/alice/usage", page_size=3).json()
    second = get(api, "/api/user/alice/usage", page_size=3, page=2).json()

    assert len(first["recent_requests"]) == 3 and first["pagination"] == {"page": 1, "page_size": 3, "has_next": True}
    assert [r["request_id"] for r in second["recent_requests"]] == [str(calls[0].id)]
    assert second["pagination"]["has_next"] is False


def test_a_key_that_pins_a_user_sees_only_that_user(teammate_key, calls):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {teammate_key}")

    own = get(client, "/api/user/bob/usage")
    other = get(client, "/api/user/alice/usage")

    assert own.status_code == 200 and own.json()["summary"]["total_cost_usd"] == "3.0000000000"
    assert other.status_code == 403
    assert other.json()["error"]["param"] == "user_id"


def test_a_key_never_sees_another_applications_usage(api, stranger_key, calls):
    asked = get(api, "/api/user/alice/usage", application_id="globex")
    stranger = get(Client(HTTP_AUTHORIZATION=f"Bearer {stranger_key}"), "/api/user/alice/usage")

    assert asked.status_code == 403 and asked.json()["error"]["param"] == "application_id"
    assert stranger.status_code == 200
    assert stranger.json()["summary"]["total_requests"] == 0
    assert stranger.json()["recent_requests"] == []


def test_staff_see_every_application(client, calls):
    staff = get_user_model().objects.create_user("ops", password="pw", is_staff=True)
    client.force_login(staff)

    body = get(client, "/api/user/alice/usage").json()

    assert body["summary"]["total_requests"] == 5
    assert {a["application_id"] for a in body["usage_by_application"]} == {"acme", "globex"}


def test_a_signed_in_person_sees_only_their_own_web_usage(client, calls):
    person = get_user_model().objects.create_user("dora", password="pw")
    make_request(application_id="web", user_id="dora", created_at=timezone.now() - timedelta(hours=2))
    client.force_login(person)

    own = get(client, "/api/user/dora/usage")
    other = get(client, "/api/user/alice/usage")

    assert own.status_code == 200 and own.json()["summary"]["total_requests"] == 1
    assert other.status_code == 403


def test_without_a_key_it_is_a_401(anon, calls):
    response = get(anon, "/api/user/alice/usage")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2025-13-45"}, "until"),
        ({"since": ""}, "since"),
        ({"since": "2025-02-01", "until": "2025-01-01"}, "since"),
        ({"interval": "week"}, "interval"),
        ({"interval": "hour", "since": "2025-01-01", "until": "2025-03-01"}, "interval"),
        ({"page": "0"}, "page"),
        ({"page": "two"}, "page"),
        ({"page_size": "1000"}, "page_size"),
        ({"model": "x" * 101}, "model"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(api, calls, params, param):
    before = Request.objects.count()

    response = get(api, "/api/user/alice/usage", **params)

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert Request.objects.count() == before


def test_an_hourly_series_has_one_entry_per_hour(api, calls):
    now = timezone.now()
    since = (now - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)

    body = get(api, "/api/user/alice/usage", since=since.isoformat(), interval="hour").json()

    assert sum(h["requests"] for h in body["series"]) == 2
    assert len(body["series"]) == 4
    assert all("hour" in h for h in body["series"])
