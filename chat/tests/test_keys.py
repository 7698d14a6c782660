"""Gateway keys: stored hashed, shown once, looked up by hash, revocable, `last_used_at` kept cheaply."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat.models import ApiKey
from chat.services import keys
from chat.services.keys import acaller_from_key, caller_from_key, key_create, key_revoke
from chat.tests.counters import async_orm_closed  # noqa: F401

pytestmark = pytest.mark.django_db


def test_a_new_key_is_kept_only_as_its_hash_and_a_short_prefix(acme):
    key, raw = key_create(application=acme, name="ci")

    assert raw.startswith("gw_") and len(raw) >= 40
    row = ApiKey.objects.get(pk=key.pk)
    assert row.hashed == hashlib.sha256(raw.encode()).hexdigest()
    assert row.prefix == raw[:11]
    stored = " ".join(str(v) for v in ApiKey.objects.filter(pk=key.pk).values().get().values())
    assert raw not in stored
    assert raw[11:] not in stored


def test_every_key_is_different(acme):
    raws = {key_create(application=acme)[1] for _ in range(20)}

    assert len(raws) == 20


def test_a_key_stands_for_its_application_user_and_limits(acme):
    key, raw = key_create(
        application=acme, user_id="bob", budget_usd=Decimal("5"), budget_period="day", rpm=10, tpm=1000
    )

    caller = caller_from_key(raw)

    assert (caller.application_id, caller.user_id, caller.user_pinned) == ("acme", "bob", True)
    assert (caller.key_id, caller.key_prefix, caller.rpm, caller.tpm) == (key.pk, key.prefix, 10, 1000)
    assert (caller.key_budget_usd, caller.key_budget_period) == (Decimal("5"), "day")


def test_a_revoked_key_stops_working_in_this_process_at_once(acme):
    key, raw = key_create(application=acme)
    assert caller_from_key(raw) is not None  # cached now

    key_revoke(key=key)

    assert caller_from_key(raw) is None
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None


def test_revoking_twice_keeps_the_first_revocation_time(acme):
    key, _ = key_create(application=acme)
    first = key_revoke(key=key).revoked_at

    key_revoke(key=ApiKey.objects.get(pk=key.pk))

    assert ApiKey.objects.get(pk=key.pk).revoked_at == first


def test_a_key_is_refused_from_the_moment_it_expires_even_while_cached(acme):
    _, raw = key_create(application=acme, expires_at=timezone.now() + timedelta(seconds=0.5))
    assert caller_from_key(raw) is not None

    time.sleep(0.6)

    assert caller_from_key(raw) is None


def test_a_repeated_lookup_is_served_from_the_cache_without_a_query(acme):
    _, raw = key_create(application=acme)
    caller_from_key(raw)

    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert caller_from_key(raw) is not None

    assert len(queries) == 0


@pytest.mark.parametrize("raw", ["", "gw_short", "sk-" + "a" * 40, "gw_" + "a" * 43 + "\n", "gw_" + "a" * 500])
def test_a_key_that_cannot_be_one_is_refused_without_asking_the_database(db, raw):
    with CaptureQueriesContext(connection) as queries:
        assert caller_from_key(raw) is None

    assert len(queries) == 0


def test_last_used_is_written_once_a_minute_not_on_every_call(acme, monkeypatch):
    key, raw = key_create(application=acme)
    assert key.last_used_at is None

    with CaptureQueriesContext(connection) as queries:
        for _ in range(10):
            caller_from_key(raw)
    updates = [q for q in queries if q["sql"].startswith("UPDATE")]

    assert len(updates) == 1
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None and timezone.now() - first < timedelta(seconds=5)

    clock = time.monotonic() + keys.LAST_USED_EVERY_SECONDS + 1
    monkeypatch.setattr(keys.time, "monotonic", lambda: clock)
    caller_from_key(raw)

    assert ApiKey.objects.get(pk=key.pk).last_used_at > first


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_orm_closed")
async def test_the_async_lookup_answers_from_the_cache_without_a_thread(acme, owner_key, monkeypatch):
    raw = owner_key
    assert await acaller_from_key(raw) is not None

    def no_thread(*args, **kwargs):
        raise AssertionError("the database was asked")

    monkeypatch.setattr("chat.db.run_db", no_thread)
    caller = await acaller_from_key(raw)

    assert caller is not None and caller.application_id == "acme"


def test_guessed_keys_cannot_grow_the_cache_without_end(db, monkeypatch):
    monkeypatch.setattr(keys, "CACHE_MAX_ENTRIES", 50)

    for i in range(200):
        caller_from_key(f"gw_{i:040d}")

    assert len(keys._cache) <= 50


def test_a_budget_needs_a_known_period(acme):
    with pytest.raises(ValueError, match="budget_period"):
        key_create(application=acme, budget_usd=Decimal("1"), budget_period="week")
