from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat.models import ApiKey, Request
from usage import selectors
from usage.tests.conftest import make_request

pytestmark = pytest.mark.django_db

LIST = "/admin/chat/request/"
DASHBOARD = "/admin/chat/request/dashboard/"
EXPORT = "/admin/chat/request/export/"


@pytest.fixture
def staff(client) -> Client:
    client.force_login(get_user_model().objects.create_superuser("ops", "ops@example.com", "pw"))
    return client


def totals_text(html: str) -> str:
    return " ".join(re.search(r'class="usage-totals".*?</p>', html, re.S).group(0).split())


def test_the_request_list_loads_with_totals_of_every_row(staff, history):
    response = staff.get(LIST)

    assert response.status_code == 200
    html = response.content.decode()
    cost = sum((r.cost_usd for r in history), Decimal(0))
    tokens = sum(r.total_tokens for r in history)
    assert f"All {len(history)} requests in this list:" in totals_text(html)
    assert f"{tokens:,} tokens · {cost:f} USD" in totals_text(html)
    assert "Usage dashboard" in html and "Export CSV" in html


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"status__exact": "error"}, lambda r: r.status == "error"),
        (
            {"model": "gpt-4o", "application_id": "globex"},
            lambda r: (r.model, r.application_id) == ("gpt-4o", "globex"),
        ),
        ({"user_id": "carol"}, lambda r: r.user_id == "carol"),
        ({"q": "answer 17"}, lambda r: "answer 17" in r.response),
        ({"q": "bob"}, lambda r: r.user_id == "bob"),
    ],
)
def test_totals_follow_the_active_filters_and_search(staff, history, params, keep):
    rows = [r for r in history if keep(r)]

    html = staff.get(LIST, params).content.decode()

    cost = sum((r.cost_usd for r in rows), Decimal(0))
    assert f"All {len(rows)} requests in this list:" in totals_text(html)
    assert f"{cost:f} USD" in totals_text(html)


def test_totals_follow_a_date_range(staff, history):
    now = timezone.now()
    since, until = now - timedelta(days=3, hours=7), now - timedelta(days=1)
    rows = [r for r in history if since <= r.created_at < until]

    html = staff.get(LIST, {"created_at__gte": since.isoformat(), "created_at__lt": until.isoformat()}).content.decode()

    assert f"All {len(rows)} requests in this list:" in totals_text(html)


def test_the_list_pages_without_counting_the_table(staff, history):
    with CaptureQueriesContext(connection) as queries:
        first = staff.get(LIST).content.decode()
    last = staff.get(LIST, {"p": 8}).content.decode()

    assert not [q["sql"] for q in queries if re.search(r"COUNT\(\*\).*FROM \"chat_request\"", q["sql"])]
    assert "Page 1" in first and "?p=2" in first
    assert "Page 8" in last and "Older" not in last  # 400 rows at 50 a page
    assert len(re.findall(r"/admin/chat/request/[0-9a-f-]{36}/change/", last)) == 50


def test_the_date_hierarchy_drills_from_years_to_months_to_days(staff, db):
    now = timezone.localtime(timezone.now())
    old = make_request(created_at=now - timedelta(days=400))
    make_request(created_at=now)

    years = staff.get(LIST).content.decode()
    year = timezone.localtime(old.created_at).year
    months = staff.get(LIST, {"created_at__year": year}).content.decode()
    month = timezone.localtime(old.created_at).month
    days = staff.get(LIST, {"created_at__year": year, "created_at__month": month}).content.decode()

    assert f"created_at__year={year}" in years and f"created_at__year={now.year}" in years
    assert timezone.localtime(old.created_at).strftime("%B %Y") in months
    assert f"created_at__day={timezone.localtime(old.created_at).day}" in days
    assert "All 1 requests in this list:" in totals_text(days)


def test_a_request_id_search_finds_exactly_that_row(staff, history):
    row = history[5]

    html = staff.get(LIST, {"q": str(row.id)}).content.decode()

    assert re.findall(r"/admin/chat/request/([0-9a-f-]{36})/change/", html) == [str(row.id)]


def test_the_detail_page_shows_messages_answer_usage_and_error(staff, acme):
    key = ApiKey.objects.create(application=acme, prefix="gw_visible", hashed="9" * 64)
    row = make_request(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "<b>hi</b>"}],
        response="Hello there",
        status="error",
        error_type="Timeout",
        error_message="The provider did not answer in time.",
        key=key,
        prompt_tokens=11,
        completion_tokens=7,
        total_tokens=18,
    )

    response = staff.get(f"{LIST}{row.id}/change/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Be brief." in html and "&lt;b&gt;hi&lt;/b&gt;" in html and "<b>hi</b>" not in html
    assert "Hello there" in html
    assert "prompt 11 · completion 7 · total 18" in html
    assert "Timeout" in html and "The provider did not answer in time." in html
    assert "gw_visible" in html and "9" * 64 not in html
    assert 'name="_save"' not in html  # read-only


def test_nobody_may_add_change_or_delete_by_default(staff, history):
    row = history[0]

    assert staff.get(f"{LIST}add/").status_code == 403
    assert staff.post(f"{LIST}{row.id}/change/", {"user_id": "mallory"}).status_code == 403
    assert staff.post(f"{LIST}{row.id}/delete/", {"post": "yes"}).status_code == 403
    assert Request.objects.get(id=row.id).user_id == row.user_id


def test_a_deployment_may_let_superusers_delete_and_the_figures_follow(staff, history, settings):
    settings.USAGE_ADMIN_ALLOW_DELETE = True
    row = next(r for r in history if r.created_at < timezone.now() - timedelta(days=2))
    now = timezone.now()
    before = selectors.usage_totals(selectors.usage_filter(since=now - timedelta(days=30), until=now))

    response = staff.post(f"{LIST}{row.id}/delete/", {"post": "yes"})

    assert response.status_code == 302
    after = selectors.usage_totals(selectors.usage_filter(since=now - timedelta(days=30), until=now))
    assert (after.requests, after.cost_usd) == (before.requests - 1, before.cost_usd - row.cost_usd)


def test_the_csv_export_holds_the_filtered_rows(staff, history):
    response = staff.get(EXPORT, {"model": "claude-haiku-4-5", "status__exact": "success"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    wanted = [r for r in history if r.model == "claude-haiku-4-5" and r.status == "success"]
    assert sorted(r["id"] for r in rows) == sorted(str(r.id) for r in wanted)
    assert sum(Decimal(r["cost_usd"]) for r in rows) == sum(r.cost_usd for r in wanted)


def test_the_dashboard_shows_cards_charts_and_tables_that_drill_down(staff, history):
    now = timezone.now()
    in_period = [r for r in history if r.created_at >= now - timedelta(days=7)]

    response = staff.get(DASHBOARD, {"period": "7d"})

    html = response.content.decode()
    assert response.status_code == 200
    cards = dict(re.findall(r"<span>(.*?)</span><strong>(.*?)</strong>", html))
    since = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)
    rows = [r for r in in_period if r.created_at >= since]
    assert cards["Requests"] == f"{len(rows):,}"
    assert cards["Tokens"] == f"{sum(r.total_tokens for r in rows):,}"
    assert cards["Users"] == str(len({r.user_id for r in rows}))
    assert html.count('<svg class="usage-chart"') == 4
    assert "<script" not in html.split('id="content-main"')[1]  # charts are drawn on the server
    assert 'href="/admin/chat/request/?created_at__gte=' in html
    assert "model=gpt-4o" in html and "user_id=alice" in html and "application_id=globex" in html
    drill = re.search(r'href="(/admin/chat/request/\?[^"]*model=gpt-4o)"', html).group(1).replace("&amp;", "&")
    listed = staff.get(drill).content.decode()
    assert f"All {sum(r.model == 'gpt-4o' for r in rows)} requests in this list:" in totals_text(listed)


@pytest.mark.parametrize("params", [{"since": "garbage"}, {"period": "forever"}, {"interval": "hour", "period": "90d"}])
def test_a_bad_dashboard_parameter_is_explained_not_a_500(staff, history, params):
    response = staff.get(DASHBOARD, params)

    assert response.status_code == 200
    assert 'class="usage-errors"' in response.content.decode()


@pytest.mark.parametrize("path", [LIST, DASHBOARD, EXPORT, "/admin/"])
def test_people_who_are_not_staff_are_sent_to_the_login(client, path):
    client.force_login(get_user_model().objects.create_user("dora", password="pw"))

    response = client.get(path)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize("path", [DASHBOARD, EXPORT])
def test_staff_without_the_view_permission_are_refused(client, path):
    client.force_login(get_user_model().objects.create_user("intern", password="pw", is_staff=True))

    assert client.get(path).status_code == 403


def test_staff_with_the_view_permission_see_the_dashboard(client, history):
    user = get_user_model().objects.create_user("analyst", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_request"))
    client.force_login(user)

    assert client.get(DASHBOARD).status_code == 200
    assert client.get(LIST).status_code == 200
    assert "Usage dashboard" in client.get("/admin/").content.decode()


def test_an_empty_table_shows_empty_pages(staff, db):
    listed = staff.get(LIST)
    dashboard = staff.get(DASHBOARD)

    assert listed.status_code == dashboard.status_code == 200
    assert "All 0 requests in this list:" in totals_text(listed.content.decode())
    assert "No requests in this period." in dashboard.content.decode()
