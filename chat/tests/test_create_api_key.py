"""`create_api_key` and `dev_setup`: keys from the command line, printed once, usable at once."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from chat.models import ApiKey, Application
from chat.services.keys import caller_from_key

pytestmark = pytest.mark.django_db
KEY = re.compile(r"gw_[A-Za-z0-9_-]{20,}")


def run(*args: str) -> str:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue()


def test_it_prints_a_working_key_once_with_every_limit(acme):
    out = run("--app", "acme", "--user", "bob", "--budget", "12.5", "--period", "day", "--rpm", "30", "--tpm", "5000")

    raws = KEY.findall(out)
    assert len(raws) == 1
    key = ApiKey.objects.get()
    assert (key.application, key.user_id, key.budget_usd, key.budget_period) == (acme, "bob", Decimal("12.5"), "day")
    assert (key.rpm, key.tpm, key.expires_at) == (30, 5000, None)
    assert key.prefix in out and "not be shown again" in out
    assert caller_from_key(raws[0]).key_id == key.pk
    response = Client(HTTP_AUTHORIZATION=f"Bearer {raws[0]}").post(
        "/api/chat", data=json.dumps({"query": "hi", "model": "gpt-4o-mini"}), content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json()["metadata"]["user_id"] == "bob"


def test_quiet_prints_only_the_key_for_scripts(acme):
    out = run("--app", "acme", "--quiet")

    assert KEY.fullmatch(out.strip())
    assert caller_from_key(out.strip()) is not None


def test_a_budget_without_a_period_is_monthly(acme):
    run("--app", "acme", "--budget", "3")

    assert (ApiKey.objects.get().budget_usd, ApiKey.objects.get().budget_period) == (Decimal("3"), "month")


def test_an_unknown_application_is_refused_with_the_way_out(acme):
    with pytest.raises(CommandError, match="--create-app") as error:
        run("--app", "nope")

    assert "acme" in str(error.value)
    assert not ApiKey.objects.exists()


def test_create_app_creates_the_application_first(db):
    out = run("--app", "new-app", "--create-app")

    assert "Created application 'new-app'" in out
    assert ApiKey.objects.get().application == Application.objects.get(name="new-app")


def test_an_application_name_that_is_not_a_slug_is_refused(db):
    with pytest.raises(CommandError, match="Cannot create application"):
        run("--app", "two words", "--create-app")

    assert not Application.objects.exists()


def test_an_inactive_application_gets_no_key(acme):
    acme.is_active = False
    acme.save()

    with pytest.raises(CommandError, match="inactive"):
        run("--app", "acme")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "ten"], "not an amount"),
        (["--budget", "-1"], "above 0"),
        (["--budget", "0"], "above 0"),
        (["--budget", "NaN"], "above 0"),
        (["--budget", "0.00001"], "4 decimals"),
        (["--period", "day"], "--period needs --budget"),
        (["--rpm", "0"], "above zero"),
        (["--tpm", "many"], "above zero"),
        (["--expires", "2001-01-01"], "in the past"),
        (["--expires", "soon"], "is not a date"),
        (["--expires", "2031-02-30"], "is not a date"),
        (["--user", "u" * 101], "at most 100"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_sentence(acme, args, message):
    with pytest.raises(CommandError, match=message):
        run("--app", "acme", *args)

    assert not ApiKey.objects.exists()


def test_a_period_outside_day_month_total_is_refused(acme):
    with pytest.raises(CommandError, match="invalid choice"):
        run("--app", "acme", "--budget", "1", "--period", "week")


def test_expiry_in_days_and_as_a_date(acme):
    run("--app", "acme", "--expires", "30d")
    run("--app", "acme", "--expires", "2999-12-31")

    in_days, on_date = ApiKey.objects.order_by("pk")
    assert abs(in_days.expires_at - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    assert on_date.expires_at.date().isoformat() == "3000-01-01"  # the whole of the last day counts


def test_dev_setup_prints_a_key_that_makes_the_first_call(monkeypatch, tmp_path):
    from chat.management.commands import dev_setup

    monkeypatch.setattr(dev_setup, "CREDENTIALS", tmp_path / ".dev-key")
    out = StringIO()
    call_command("dev_setup", "--port", "8123", stdout=out)

    printed = out.getvalue()
    raw = KEY.search(printed).group()
    assert "curl -X POST http://127.0.0.1:8123/api/chat" in printed
    response = Client(HTTP_AUTHORIZATION=f"Bearer {raw}").post(
        "/api/chat", data=json.dumps({"query": "hi", "model": "gpt-4o-mini"}), content_type="application/json"
    )
    assert response.status_code == 200
    assert (tmp_path / ".dev-key").stat().st_mode & 0o077 == 0  # readable by its owner only

    again = StringIO()
    call_command("dev_setup", stdout=again)
    assert raw in again.getvalue()  # the same key on the next run, not a new one each time
    assert ApiKey.objects.count() == 1
