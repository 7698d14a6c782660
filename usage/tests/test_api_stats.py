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
    now = timezone.now()
    rows = []
    for i, latency in enumerate([100, 200, 300, 400]):
        rows.append(make_request(created_at=now - timedelta(days=i, hours=1), latency_ms=latency, user_id=f"u{i % 2}"))
    rows.append(make_request(created_at=now - timedelta(days=1), model="gpt-4o", status="error", latency_ms=1000))
    rows.append(make_request(created_at=now - timedelta(days=1), model="gpt-4o", latency_ms=500, cost_usd=Decimal("2")))
    rows.append(
        make_request(created_at=now - timedelta(days=2), application_id="globex", user_id="zed", cost_usd=Decimal("9"))
    )
    return rows


@pytest.fixture
def staff(client) -> Client:
    client.force_login(get_user_model().objects.create_user("ops", password="pw", is_staff=True))
    return client


def test_staff_see_figures_across_all_users_with_percentiles_per_model(staff, calls):
    response = staff.get("/api/stats")

    assert response.status_code == 200
    body = response.json()
    summary = body["summary"]
    assert (summary["total_requests"], summary["users"], summary["apps_used"], summary["models_used"]) == (7, 4, 2, 2)
    assert summary["total_cost_usd"] == "11.0000105000"
    assert (summary["errors"], summary["error_rate"]) == (1, round(1 / 7, 6))
    models = {m["model"]: m for m in body["usage_by_model"]}
    assert (models["gpt-4o-mini"]["p50_latency_ms"], models["gpt-4o-mini"]["p95_latency_ms"]) == (200.0, 380.0)
    assert (models["gpt-4o"]["p50_latency_ms"], models["gpt-4o"]["p95_latency_ms"]) == (750.0, 975.0)
    assert (models["gpt-4o"]["error_rate"], models["gpt-4o-mini"]["error_rate"]) == (0.5, 0.0)
    assert body["top_users"][0] == {**body["top_users"][0], "user_id": "zed", "cost_usd": "9.0000000000"}
    assert [a["application_id"] for a in body["usage_by_application"]] == ["globex", "acme"]
    assert sum(day["requests"] for day in body["series"]) == 7


def test_a_key_sees_only_its_own_applications_figures(api, calls):
    body = api.get("/api/stats").json()

    assert body["summary"]["total_requests"] == 6
    assert [a["application_id"] for a in body["usage_by_application"]] == ["acme"]
    assert "zed" not in {u["user_id"] for u in body["top_users"]}


def test_a_key_asking_for_another_application_is_refused(api, calls):
    response = api.get("/api/stats", {"application_id": "globex"})

    assert response.status_code == 403
    assert response.json()["error"]["param"] == "application_id"


def test_a_key_that_pins_a_user_sees_its_applications_figures(teammate_key, calls):
    body = Client(HTTP_AUTHORIZATION=f"Bearer {teammate_key}").get("/api/stats").json()

    assert body["summary"]["total_requests"] == 6


def test_a_signed_in_person_who_is_not_staff_is_refused(client, calls):
    client.force_login(get_user_model().objects.create_user("dora", password="pw"))

    response = client.get("/api/stats")

    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"


def test_without_a_key_it_is_a_401(anon, calls):
    assert anon.get("/api/stats").status_code == 401


def test_filters_and_top_narrow_the_figures(staff, calls):
    body = staff.get("/api/stats", {"model": "gpt-4o-mini", "application_id": "acme", "top": "1"}).json()

    assert body["summary"]["total_requests"] == 4
    assert [m["model"] for m in body["usage_by_model"]] == ["gpt-4o-mini"]
    assert len(body["top_users"]) == 1


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"since": "not-a-date"}, "since"),
        ({"until": "31/01/2025"}, "until"),
        ({"since": "2025-02-01T00:00:00Z", "until": "2025-01-31T00:00:00Z"}, "since"),
        ({"top": "0"}, "top"),
        ({"top": "-3"}, "top"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(staff, calls, params, param):
    response = staff.get("/api/stats", params)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_an_empty_period_answers_zeros(staff, db):
    body = staff.get("/api/stats", {"since": "2020-01-01", "until": "2020-01-07"}).json()

    assert body["summary"]["total_requests"] == 0
    assert body["summary"]["total_cost_usd"] == "0.0000000000"
    assert body["usage_by_model"] == []
    assert len(body["series"]) == 7
