from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.utils import timezone

from chat.models import Request
from chat.pricing import Prices, Usage, cost_of
from usage import selectors
from usage.demo import MODELS

pytestmark = pytest.mark.django_db


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo_data", *args, stdout=out)
    return out.getvalue()


def test_it_adds_realistic_rows_across_users_apps_models_and_months(db):
    output = seed("--rows", "3000", "--months", "6", "--users", "40")

    rows = Request.objects.all()
    assert rows.count() == 3000 and "Added 3,000 rows" in output
    assert rows.values("user_id").distinct().count() > 20
    assert rows.values("application_id").distinct().count() >= 5
    assert rows.values("model").distinct().count() >= 6
    months = {(d.year, d.month) for d in rows.values_list("created_at", flat=True)}
    assert len(months) >= 6
    statuses = dict(rows.values_list("status").annotate(n=Count("id")))
    assert statuses["success"] > 2700 and 30 < statuses["error"] < 200
    assert all(created <= timezone.now() for created in rows.values_list("created_at", flat=True))


def test_each_row_reads_back_through_the_orm_with_its_price(db):
    seed("--rows", "500", "--months", "1")

    for row in Request.objects.all()[:200]:
        _, _, input_price, output_price, _, _ = MODELS[row.model]
        prices = Prices.per_million(Decimal(input_price), Decimal(output_price))
        assert row.cost_usd == cost_of(Usage(prompt=row.prompt_tokens, completion=row.completion_tokens), prices)
        assert row.total_tokens == row.prompt_tokens + row.completion_tokens
        assert row.messages[0]["role"] == "user" and row.metadata == {"demo": True}
        assert timezone.is_aware(row.created_at)


def test_the_usage_figures_include_the_seeded_rows_at_once(db):
    seed("--rows", "2000", "--months", "2")

    now = timezone.now()
    totals = selectors.usage_totals(selectors.usage_filter(since=now - timedelta(days=90), until=now))
    rows = list(Request.objects.all())
    assert totals.requests == 2000
    assert totals.cost_usd == sum((r.cost_usd for r in rows), Decimal(0))


def test_the_same_seed_gives_the_same_rows(db):
    seed("--rows", "300", "--seed", "7")
    first = sorted(Request.objects.values_list("user_id", "model", "prompt_tokens", "latency_ms"))
    Request.objects.all().delete()

    seed("--rows", "300", "--seed", "7")

    assert sorted(Request.objects.values_list("user_id", "model", "prompt_tokens", "latency_ms")) == first


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rows", "0"], "--rows"),
        (["--rows", "10", "--months", "0"], "--months"),
        (["--rows", "10", "--users", "0"], "--users"),
        (["--rows", "ten"], "invalid int"),
    ],
)
def test_bad_arguments_are_a_clear_command_error(db, args, message):
    with pytest.raises(CommandError, match=message):
        seed(*args)
