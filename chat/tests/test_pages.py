"""The browser pages as HTML: sign-in, the chat page, the usage page, their static files and headers."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from chat.models import Request

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-test-password-1"


@pytest.fixture
def alice() -> Client:
    get_user_model().objects.create_user("alice", password=PASSWORD)
    client = Client()
    client.login(username="alice", password=PASSWORD)
    return client


@pytest.fixture
def staff() -> Client:
    get_user_model().objects.create_user("sam", password=PASSWORD, is_staff=True)
    client = Client()
    client.login(username="sam", password=PASSWORD)
    return client


def row(user_id: str, **fields) -> Request:  # type: ignore[no-untyped-def]
    values = dict(
        application_id="web",
        endpoint="/llm/chat",
        model="gpt-4o-mini",
        status="success",
        prompt_tokens=4,
        completion_tokens=6,
        total_tokens=10,
        cost_usd=Decimal("0.0000042"),
        latency_ms=200,
    )
    values.update(fields)
    return Request.objects.create(user_id=user_id, **values)


def figure(html: str, name: str) -> str:
    match = re.search(rf'data-figure="{name}"[^>]*>([^<]*)<', html)
    assert match, f"no {name} card"
    return match.group(1)


def test_the_chat_page_asks_a_stranger_to_sign_in(anon):
    response = anon.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/login?next=/"


def test_a_person_signs_in_on_the_login_page_and_lands_on_the_chat(anon):
    get_user_model().objects.create_user("alice", password=PASSWORD)
    page = anon.get("/login?next=/")
    assert page.status_code == 200
    assert b'name="username"' in page.content

    response = anon.post("/login", {"username": "alice", "password": PASSWORD, "next": "/"})

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert anon.get("/").status_code == 200


def test_a_wrong_password_is_refused_with_a_message(anon):
    get_user_model().objects.create_user("alice", password=PASSWORD)

    response = anon.post("/login", {"username": "alice", "password": "nope"})

    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_signing_out_ends_the_session(alice):
    response = alice.post("/logout")

    assert response.status_code == 302
    assert alice.get("/").status_code == 302


def test_the_chat_page_loads_only_its_own_files_under_a_strict_policy(alice):
    response = alice.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "connect-src 'self'" in response["Content-Security-Policy"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/static/js/chat.js" in sources and "/static/css/app.css" in sources
    assert all(s.startswith(("/", "#", "?")) for s in sources), sources
    assert "<script>" not in html  # no inline script: the policy would refuse it
    assert '"chat_url": "/llm/chat"' in html
    assert '"admin_request_url": null' in html  # not staff


@pytest.mark.parametrize(
    "path", ["/static/js/chat.js", "/static/js/markdown.js", "/static/js/usage.js", "/static/css/app.css"]
)
def test_the_pages_static_files_are_served_by_the_app_itself(anon, path):
    response = anon.get(path)

    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert len(body) > 500
    # Nothing is fetched from elsewhere (the SVG namespace is a name, not a download).
    assert not re.search(rb"https?://(?!www\.w3\.org/2000/svg)[a-z0-9]", body)


def test_the_page_token_lets_a_signed_in_person_call_the_gateway_and_nothing_else_does(alice):
    token = alice.get("/").context["config"]["csrf_token"]
    alice.handler.enforce_csrf_checks = True
    body = {"messages": [{"role": "user", "content": "Hi"}], "model": "offline-demo"}

    refused = alice.post("/llm/chat", data=body, content_type="application/json")
    answered = alice.post("/llm/chat", data=body, content_type="application/json", HTTP_X_CSRFTOKEN=token)

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    assert answered.status_code == 200
    assert "offline demo model" in answered.json()["content"]
    assert Request.objects.get().user_id == "alice"


def test_the_usage_page_shows_only_ones_own_requests(alice):
    row("alice", cost_usd=Decimal("0.0000042"))
    row("alice", model="gpt-4o", application_id="support-bot", cost_usd=Decimal("0.0025"), status="error")
    row("bob", cost_usd=Decimal("9"))

    response = alice.get("/usage")

    assert response.status_code == 200
    html = response.content.decode()
    assert figure(html, "total_requests") == "2"
    assert figure(html, "total_cost_usd") == "$0.0025042"
    assert figure(html, "apps_used") == "2"
    assert figure(html, "models_used") == "2"
    assert "bob" not in html
    by_application = html.split('id="by-1-title"')[1].split("</section>")[0]
    assert re.search(r'<th scope="row">support-bot</th>\s*<td class="num" data-label="Requests">1</td>', by_application)
    assert re.search(r'<th scope="row">web</th>', by_application)
    by_model = html.split('id="by-2-title"')[1].split("</section>")[0]
    assert re.search(r'<th scope="row">gpt-4o</th>[\s\S]*?data-label="Cost">\$0.0025</td>', by_model)
    assert "/admin/" not in html.split('id="recent-title"')[1]  # no admin links for non-staff
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_a_person_who_is_not_staff_cannot_look_at_someone_else(alice):
    row("bob")

    html = alice.get("/usage?user=bob").content.decode()

    assert figure(html, "total_requests") == "0"
    assert 'name="user"' not in html


def test_staff_look_at_anyone_or_everyone(staff):
    row("alice")
    row("bob")
    row("bob")

    assert figure(staff.get("/usage").content.decode(), "total_requests") == "0"  # their own by default
    assert figure(staff.get("/usage?user=bob").content.decode(), "total_requests") == "2"
    everyone = staff.get("/usage?user=").content.decode()
    assert figure(everyone, "total_requests") == "3"
    assert "All users" in everyone
    assert '<option value="bob">' in everyone


def test_staff_get_admin_links_only_with_the_permission_to_view_requests(staff):
    from django.contrib.auth.models import Permission

    mine = row("sam")
    assert "/admin/chat/request/" not in staff.get("/usage").content.decode()
    assert '"admin_request_url": null' in staff.get("/").content.decode()

    sam = get_user_model().objects.get(username="sam")
    sam.user_permissions.add(Permission.objects.get(codename="view_request", content_type__app_label="chat"))

    assert f'href="/admin/chat/request/{mine.id}/change/"' in staff.get("/usage").content.decode()
    nil = "00000000-0000-0000-0000-000000000000"
    assert f'"admin_request_url": "/admin/chat/request/{nil}/change/"' in staff.get("/").content.decode()


def test_the_period_picker_narrows_the_figures(alice):
    row("alice")
    old = row("alice")
    Request.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=20))

    assert figure(alice.get("/usage?period=7d").content.decode(), "total_requests") == "1"
    assert figure(alice.get("/usage?period=30d").content.decode(), "total_requests") == "2"
    assert figure(alice.get("/usage?period=24h").content.decode(), "total_requests") == "1"
    since = (timezone.localdate() - timedelta(days=25)).isoformat()
    until = (timezone.localdate() - timedelta(days=15)).isoformat()
    custom = alice.get(f"/usage?since={since}&until={until}").content.decode()
    assert figure(custom, "total_requests") == "1"


@pytest.mark.parametrize("query", ["period=forever", "since=yesterday", "since=2025-02-01&until=2025-01-01"])
def test_a_bad_period_is_explained_and_the_default_shown(alice, query):
    response = alice.get(f"/usage?{query}")

    assert response.status_code == 400
    assert b"That period cannot be shown" in response.content
    assert b'data-figure="total_requests"' in response.content


def test_the_usage_chart_has_one_point_per_day_of_the_period(alice):
    row("alice")

    response = alice.get("/usage?period=7d")

    chart = response.context["chart"]
    assert chart["interval"] == "day"
    assert len(chart["points"]) == 7
    assert [p["requests"] for p in chart["points"]] == [0, 0, 0, 0, 0, 0, 1]
