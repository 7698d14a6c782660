"""Who may call: a gateway key on every API endpoint, a signed-in person on the pages, anonymous only when allowed."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import Resolver404, resolve
from django.utils import timezone

from chat.models import Request
from chat.services.keys import key_create, key_revoke

pytestmark = pytest.mark.django_db

CHAT = {"messages": [{"role": "user", "content": "hi"}], "model": "gpt-4o-mini"}
CANDIDATES = [
    ("post", "/api/chat", {"query": "hi", "model": "gpt-4o-mini"}),
    ("post", "/llm/simple", {"prompt": "hi", "model": "gpt-4o-mini"}),
    ("post", "/llm/chat", CHAT),
    ("post", "/v1/chat/completions", CHAT),
    ("post", "/v1/embeddings", {"model": "text-embedding-3-small", "input": "hi"}),
    ("get", "/api/models", None),
    ("get", "/v1/models", None),
    ("get", "/v1/models/gpt-4o-mini", None),
    ("get", "/api/stats", None),
    ("get", "/api/user/alice/usage", None),
]


def _exists(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


# Every API endpoint the project has: the ones still to be written join as soon as their URL exists.
ENDPOINTS = [pytest.param(m, p, b, id=p) for m, p, b in CANDIDATES if _exists(p)]
CALLS = [pytest.param(m, p, b, id=p) for m, p, b in CANDIDATES if m == "post" and _exists(p)]


def call(client: Client, method: str, path: str, body: dict | None, **headers):
    if method == "get":
        return client.get(path, **headers)
    return client.post(path, data=json.dumps(body), content_type="application/json", **headers)


def assert_401(response) -> None:
    assert response.status_code == 401, response.content[:300]
    error = response.json()["error"]
    assert error["type"] == "authentication_error"
    assert error["code"] == "invalid_api_key"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_every_api_endpoint_is_in_the_list_these_tests_walk():
    assert {"/api/chat", "/llm/simple", "/llm/chat", "/api/models"} <= {p.values[1] for p in ENDPOINTS}


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_api_endpoint_refuses_a_call_without_a_key(anon, upstream, method, path, body):
    before = upstream.stats.requests
    response = call(anon, method, path, body)

    assert_401(response)
    assert "Bearer" in response.json()["error"]["message"]
    assert upstream.stats.requests == before
    assert not Request.objects.exists()


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_api_endpoint_answers_a_valid_key(api, method, path, body):
    response = call(api, method, path, body)

    assert response.status_code == 200, response.content[:300]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_api_endpoint_refuses_a_wrong_key(anon, method, path, body):
    response = call(anon, method, path, body, HTTP_AUTHORIZATION="Bearer gw_" + "x" * 43)

    assert_401(response)
    assert "Invalid, revoked or expired" in response.json()["error"]["message"]


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_a_revoked_key_is_refused_at_once(acme, anon, upstream, method, path, body):
    key, raw = key_create(application=acme)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert call(anon, method, path, body, **auth).status_code == 200
    key_revoke(key=key)
    before = upstream.stats.requests

    assert_401(call(anon, method, path, body, **auth))
    assert upstream.stats.requests == before
    assert Request.objects.count() == 1


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_an_expired_key_is_refused(acme, anon, method, path, body):
    _, raw = key_create(application=acme, expires_at=timezone.now() - timedelta(seconds=1))

    assert_401(call(anon, method, path, body, HTTP_AUTHORIZATION=f"Bearer {raw}"))
    assert not Request.objects.exists()


def test_a_key_that_expires_while_cached_is_refused_from_that_moment(acme, anon):
    key, raw = key_create(application=acme, expires_at=timezone.now() + timedelta(hours=1))
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert call(anon, "post", "/llm/simple", {"prompt": "hi"}, **auth).status_code == 200

    key.expires_at = timezone.now() - timedelta(seconds=1)
    key.save()
    from chat.services import keys

    keys._cache[key.hashed] = (keys._cache[key.hashed][0], keys._snapshot(key))  # the snapshot another call cached

    assert_401(call(anon, "post", "/llm/simple", {"prompt": "hi"}, **auth))


def test_a_key_of_an_inactive_application_is_refused(acme, owner_key, anon):
    acme.is_active = False
    acme.save()

    assert_401(call(anon, "post", "/llm/simple", {"prompt": "hi"}, HTTP_AUTHORIZATION=f"Bearer {owner_key}"))


@pytest.mark.parametrize(
    "header",
    [
        pytest.param('Bearer "gw_' + "a" * 43 + '"', id="quotes"),
        pytest.param("Bearer ' OR '1'='1' --", id="sql"),
        pytest.param("Bearer gw_x'; DROP TABLE chat_apikey; --", id="sql-drop"),
        pytest.param("Bearer " + "A" * 10_240, id="10kb"),
        pytest.param("Bearer gw_" + "A" * 10_240, id="10kb-gw"),
        pytest.param("Bearer gw_abc\x00def\x1b[31m" + "a" * 30, id="control-chars"),
        pytest.param("Bearer gw_" + "ключ-🔑".encode().decode("latin-1") + "a" * 30, id="non-ascii"),
        pytest.param("Bearer gw_" + "a" * 43 + "\n", id="trailing-newline"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic"),
        pytest.param("Bearer", id="no-token"),
        pytest.param("Bearer    ", id="blank-token"),
        pytest.param("gw_" + "a" * 43, id="no-scheme"),
        pytest.param("Token gw_" + "a" * 43, id="other-scheme"),
    ],
)
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_a_malformed_authorization_header_is_a_401_never_a_500(anon, upstream, method, path, body, header):
    before = upstream.stats.requests
    response = call(anon, method, path, body, HTTP_AUTHORIZATION=header)

    assert_401(response)
    secret = header.partition(" ")[2].strip() or header
    if len(secret) > 8:  # what was sent is never echoed back
        assert secret not in response.content.decode("latin-1")
    assert upstream.stats.requests == before


def test_a_valid_key_with_a_wrong_scheme_is_refused_and_not_echoed(owner_key, anon):
    response = call(anon, "post", "/llm/simple", {"prompt": "hi"}, HTTP_AUTHORIZATION=f"Token {owner_key}")

    assert_401(response)
    assert owner_key not in response.content.decode()


def test_the_bearer_scheme_is_case_insensitive(owner_key, anon):
    response = call(anon, "post", "/llm/simple", {"prompt": "hi"}, HTTP_AUTHORIZATION=f"bearer  {owner_key}")

    assert response.status_code == 200


def test_an_application_id_other_than_the_keys_is_a_403_and_sends_nothing(api, stranger_key, upstream):
    before = upstream.stats.requests
    response = call(api, "post", "/api/chat", {"query": "hi", "model": "gpt-4o-mini", "application_id": "stranger-app"})

    assert response.status_code == 403
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "permission_error",
        "application_mismatch",
        "application_id",
    )
    assert "acme" in error["message"]
    assert upstream.stats.requests == before
    assert not Request.objects.exists()


def test_the_keys_own_application_id_is_accepted_and_recorded(api):
    response = call(api, "post", "/api/chat", {"query": "hi", "model": "gpt-4o-mini", "application_id": "acme"})

    assert response.status_code == 200
    assert response.json()["metadata"]["application_id"] == "acme"
    assert Request.objects.get().application_id == "acme"


def test_without_an_application_id_the_call_is_the_keys_application(api):
    response = call(api, "post", "/api/chat", {"query": "hi", "model": "gpt-4o-mini", "user_id": "alice"})

    row = Request.objects.get()
    assert response.status_code == 200
    assert (row.application_id, row.user_id) == ("acme", "alice")
    assert row.key_id is not None


def test_a_key_pinned_to_a_user_records_that_user(teammate_key, anon):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {teammate_key}"}
    response = call(anon, "post", "/api/chat", {"query": "hi", "model": "gpt-4o-mini"}, **auth)

    assert response.status_code == 200
    assert response.json()["metadata"]["user_id"] == "bob"
    assert Request.objects.get().user_id == "bob"


def test_a_key_pinned_to_a_user_cannot_act_for_another(teammate_key, anon):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {teammate_key}"}
    response = call(anon, "post", "/api/chat", {"query": "hi", "model": "gpt-4o-mini", "user_id": "alice"}, **auth)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "user_mismatch"
    assert not Request.objects.exists()


def test_anonymous_calls_work_only_when_the_operator_allows_them(anon, settings):
    assert_401(call(anon, "post", "/llm/simple", {"prompt": "hi"}))
    settings.GATEWAY_ALLOW_ANONYMOUS = True

    response = call(anon, "post", "/api/chat", {"query": "hi", "model": "gpt-4o-mini", "application_id": "lab"})

    assert response.status_code == 200
    row = Request.objects.get()
    assert (row.key_id, row.application_id) == (None, "lab")


def test_a_bad_key_is_refused_even_when_anonymous_calls_are_allowed(anon, settings):
    settings.GATEWAY_ALLOW_ANONYMOUS = True

    assert_401(call(anon, "post", "/llm/simple", {"prompt": "hi"}, HTTP_AUTHORIZATION="Bearer gw_" + "x" * 43))


def test_the_health_check_needs_no_key(anon):
    response = anon.get("/health")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.fixture
def person(db):
    return get_user_model().objects.create_user("carol", password="a long enough password")


def test_a_signed_in_person_calls_from_the_browser_as_themselves(person):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(person)
    browser.get("/")  # the page sets the CSRF cookie its script sends back
    token = browser.cookies["csrftoken"].value

    response = call(browser, "post", "/llm/chat", CHAT, HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 200, response.content[:300]
    row = Request.objects.get()
    assert (row.application_id, row.user_id, row.key_id) == ("web", "carol", None)


def test_a_browser_call_without_the_csrf_token_is_refused(person, upstream):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(person)
    before = upstream.stats.requests

    response = call(browser, "post", "/llm/chat", CHAT)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
    assert upstream.stats.requests == before


def test_a_browser_call_cannot_name_another_application(person):
    browser = Client()
    browser.force_login(person)

    response = call(browser, "post", "/api/chat", {"query": "hi", "model": "gpt-4o-mini", "application_id": "acme"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "application_mismatch"


def test_a_deactivated_person_is_no_longer_let_in(person, anon):
    browser = Client()
    browser.force_login(person)
    person.is_active = False
    person.save()

    assert_401(call(browser, "post", "/llm/chat", CHAT))
