"""Budgets per key, application and user: 429 `budget_exceeded`, exact spend, bounded overspend under concurrency."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from chat import limits
from chat.catalog import catalog
from chat.models import Request, UserBudget
from chat.services.keys import caller_from_key, key_create
from chat.tests.counters import async_orm_closed, store  # noqa: F401


@pytest.fixture
def gateway_threads(settings):
    """Database work on the gateway's own pool of threads, as in production, their connections closed after."""
    from chat.tests.live import db_threads_close

    settings.DB_WRITER_THREADS = 2
    yield
    db_threads_close()


pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store")]

HELLO_COST = Decimal("0.0000021")  # "Hello world" on gpt-4o-mini: 2 prompt + 3 completion tokens


def spent_before(*, cost: Decimal, key=None, application_id: str = "acme", user_id: str = "", when=None) -> Request:
    """A row of an earlier call, as if it had been made through the gateway."""
    return Request.objects.create(
        created_at=when or timezone.now(),
        key=key,
        application_id=application_id,
        user_id=user_id,
        endpoint="/llm/simple",
        model="gpt-4o-mini",
        status="success",
        cost_usd=cost,
    )


def ask(client: Client, body: dict | None = None, path: str = "/api/chat"):
    body = body or {"query": "Hello world", "model": "gpt-4o-mini"}
    return client.post(path, data=json.dumps(body), content_type="application/json")


def keyed(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def assert_budget_exceeded(response, scope: str) -> dict:
    assert response.status_code == 429, response.content[:300]
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "budget_exceeded")
    assert error["details"]["scope"] == scope
    assert error["message"].startswith("Budget exceeded for ")
    return error


def test_a_key_whose_budget_is_spent_gets_429_budget_exceeded(acme, upstream):
    key, raw = key_create(application=acme, budget_usd=Decimal("0.001"), budget_period="day")
    spent_before(cost=Decimal("0.001"), key=key)
    before = upstream.stats.requests

    response = ask(keyed(raw))

    error = assert_budget_exceeded(response, "key")
    assert f"key {key.prefix}…" in error["message"]
    assert "it has spent $0.001 of its $0.001 daily budget" in error["message"]
    tomorrow = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    assert error["details"]["resets_at"] == tomorrow.isoformat()
    assert 0 < int(response["Retry-After"]) <= 86_400
    assert upstream.stats.requests == before
    assert Request.objects.count() == 1


def test_a_key_with_budget_left_is_let_in(acme):
    key, raw = key_create(application=acme, budget_usd=Decimal("0.01"), budget_period="day")
    spent_before(cost=Decimal("0.005"), key=key)

    assert ask(keyed(raw)).status_code == 200


def test_an_applications_budget_counts_every_key_of_it(acme, owner_key, teammate_key):
    acme.budget_usd = Decimal("0.002")
    acme.save()
    spent_before(cost=Decimal("0.002"), application_id="acme")

    error = assert_budget_exceeded(ask(keyed(owner_key)), "application")
    assert_budget_exceeded(ask(keyed(teammate_key)), "application")
    assert "application 'acme'" in error["message"]
    assert "monthly budget" in error["message"]


def test_a_users_budget_counts_across_applications_and_spares_other_users(acme, owner_key, stranger_key):
    UserBudget.objects.create(user_id="alice", budget_usd=Decimal("0.003"), budget_period="total")
    spent_before(cost=Decimal("0.003"), application_id="stranger-app", user_id="alice")

    for raw in (owner_key, stranger_key):
        error = assert_budget_exceeded(
            ask(keyed(raw), {"query": "hi", "model": "gpt-4o-mini", "user_id": "alice"}), "user"
        )
        assert "user 'alice'" in error["message"]
        assert "Raise the budget to continue" in error["message"]
    response = ask(keyed(owner_key), {"query": "hi", "model": "gpt-4o-mini", "user_id": "bob"})
    assert response.status_code == 200


def test_a_signed_in_persons_calls_count_against_the_web_applications_budget(acme):
    from chat.models import Application

    Application.objects.create(name="web", budget_usd=Decimal("0.001"), budget_period="day")
    spent_before(cost=Decimal("0.001"), application_id="web", user_id="carol")
    browser = Client()
    browser.force_login(get_user_model().objects.create_user("carol"))

    response = ask(browser, {"messages": [{"role": "user", "content": "hi"}], "model": "gpt-4o-mini"}, "/llm/chat")

    assert_budget_exceeded(response, "application")


@pytest.mark.parametrize(
    ("period", "age", "counted"),
    [
        ("day", timedelta(0), True),
        ("day", timedelta(days=1), False),
        ("month", timedelta(0), True),
        ("month", timedelta(days=32), False),
        ("total", timedelta(days=3650), True),
    ],
)
def test_only_the_current_period_counts(acme, period, age, counted):
    key, raw = key_create(application=acme, budget_usd=Decimal("0.001"), budget_period=period)
    spent_before(cost=Decimal("0.001"), key=key, when=timezone.now() - age)

    response = ask(keyed(raw))

    assert response.status_code == (429 if counted else 200)


def test_a_call_that_may_cost_more_than_what_is_left_is_refused_before_it_starts(acme, upstream):
    key, raw = key_create(application=acme, budget_usd=Decimal("0.001"), budget_period="day")
    spent_before(cost=Decimal("0.00099"), key=key)  # 1 cent of a cent left
    body = {"messages": [{"role": "user", "content": "Hello world"}], "model": "gpt-4o-mini", "max_tokens": 100_000}

    response = ask(keyed(raw), body, "/llm/chat")

    error = assert_budget_exceeded(response, "key")
    assert "this call may cost up to $0.06" in error["message"]
    assert "only $0.00001 of its $0.001 daily budget is left" in error["message"]
    small = {**body, "max_tokens": 5}
    assert ask(keyed(raw), small, "/llm/chat").status_code == 200


def test_the_spend_counter_is_exact_and_agrees_with_the_rows(acme):
    key, raw = key_create(application=acme, budget_usd=Decimal("100"), budget_period="month")
    # Amounts a float sum gets wrong.
    for cost in ("0.1000000001", "0.2000000002", "0.0000000003", "12.3456789012"):
        spent_before(cost=Decimal(cost), key=key)
    client = keyed(raw)
    for text in ("Hello world", "one two three four", "[[status:500]] fails"):
        ask(client, {"query": text, "model": "gpt-4o-mini"})

    usage = async_to_sync(limits.budget_usage)(caller_from_key(raw))

    rows = sum(Request.objects.filter(key=key).values_list("cost_usd", flat=True), Decimal(0))
    assert usage[0].spent_usd == rows == Decimal("12.6456789018") + HELLO_COST + Decimal("0.0000036")  # 4 + 5 tokens
    assert usage[0].reserved_usd == 0
    assert limits.spend_usd(scope="key", ident=str(key.pk), since=None) == rows


def test_spend_recorded_elsewhere_is_seen_once_the_counter_is_refreshed(acme, monkeypatch):
    monkeypatch.setattr(limits, "SPEND_REFRESH_SECONDS", 1)
    key, raw = key_create(application=acme, budget_usd=Decimal("0.001"), budget_period="day")
    client = keyed(raw)
    assert ask(client).status_code == 200

    spent_before(cost=Decimal("0.001"), key=key)  # e.g. a row restored from the JSON log
    time.sleep(1.1)

    assert_budget_exceeded(ask(client), "key")


def test_a_failed_call_gives_its_reservation_back_and_costs_nothing(acme, settings):
    key, raw = key_create(application=acme, budget_usd=Decimal("0.001"), budget_period="day")
    client = keyed(raw)

    assert ask(client, {"query": "hi [[status:500]]", "model": "gpt-4o-mini"}).status_code == 502
    usage = async_to_sync(limits.budget_usage)(caller_from_key(raw))

    assert (usage[0].spent_usd, usage[0].reserved_usd) == (0, 0)
    assert Request.objects.get().cost_usd == 0


def test_the_free_demo_model_is_refused_too_once_the_budget_is_spent(acme):
    key, raw = key_create(application=acme, budget_usd=Decimal("0.001"), budget_period="day")
    spent_before(cost=Decimal("0.002"), key=key)

    assert_budget_exceeded(ask(keyed(raw), {"query": "hi", "model": "offline-demo"}), "key")


@pytest.mark.parametrize(
    "text",
    [
        "The quick brown fox jumps over the lazy dog. " * 40,
        "def f(x):\n    return {k: v for k, v in x.items() if v is not None}\n" * 30,
        "我能吞下玻璃而不伤身体。日本語のテキストも少し。" * 40,
        "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 30,
        "🙂🚀🔥💡" * 100,
        "1234567890" * 100,
    ],
    ids=["english", "code", "cjk", "cyrillic", "emoji", "digits"],
)
def test_the_quick_prompt_estimate_is_not_below_the_real_token_count(text):
    from chat import llm

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]

    assert limits.prompt_tokens_estimate(messages) >= llm.count_tokens(catalog()["gpt-4o-mini"], messages=messages)


def test_an_image_counts_as_a_fixed_number_of_tokens_whatever_its_size():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 1_000_000}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}]

    assert limits.prompt_tokens_estimate(messages) < 1100


# The prompt is echoed: "Echo: w0 … w39" is 41 completion tokens, far more than max_tokens=1 reserves.
LONG = " ".join(f"w{i}" for i in range(40))


@pytest.mark.parametrize(
    ("text", "max_tokens"),
    [
        pytest.param("Hello world [[sleep:0.3]]", 5, id="reservations-cover-the-cost"),
        pytest.param(f"{LONG} [[sleep:0.3]]", 1, id="reservations-fall-short"),
    ],
)
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_orm_closed")
@pytest.mark.usefixtures("gateway_threads")
async def test_fifty_concurrent_calls_overspend_a_nearly_spent_budget_by_at_most_what_their_reservations_missed(
    acme, text, max_tokens
):
    from gateway.asgi import application

    budget = Decimal("0.001")
    key, raw = await sync_to_async(key_create)(application=acme, budget_usd=budget, budget_period="day")
    await sync_to_async(spent_before)(cost=budget - Decimal("0.00002"), key=key)  # 2/1000 of a cent left
    messages = [{"role": "user", "content": text}]
    reserved, _ = limits.reservation_of(catalog()["gpt-4o-mini"], messages, max_tokens)

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=30) as client:
        body = {"messages": messages, "model": "gpt-4o-mini", "max_tokens": max_tokens}
        headers = {"Authorization": f"Bearer {raw}"}
        responses = await asyncio.gather(*(client.post("/llm/chat", json=body, headers=headers) for _ in range(50)))

    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(ok) + len(refused) == 50, sorted((r.status_code, r.text[:200]) for r in responses)[-1]
    assert all(r.json()["error"]["code"] == "budget_exceeded" for r in refused)
    # Only the calls whose reservations fit were let in, all at once; the others were refused at the door.
    assert 1 <= len(ok) <= Decimal("0.00002") // reserved
    costs = [c async for c in Request.objects.filter(endpoint="/llm/chat").values_list("cost_usd", flat=True)]
    assert len(costs) == len(ok)
    total = sum([c async for c in Request.objects.filter(key=key).values_list("cost_usd", flat=True)], Decimal(0))
    overspend = max(Decimal(0), total - budget)
    # The bound: what the calls in flight cost beyond what they reserved; nothing when reservations cover costs.
    assert overspend <= sum((max(Decimal(0), c - reserved) for c in costs), Decimal(0))
    if max_tokens == 5:
        assert overspend == 0
    usage = await limits.budget_usage(await sync_to_async(caller_from_key)(raw))
    assert usage[0].spent_usd == total
    assert usage[0].reserved_usd == 0
