from __future__ import annotations

import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from chat.journal import journal_name
from chat.models import Request
from usage import selectors
from usage.tests.conftest import make_request

pytestmark = pytest.mark.django_db


def totals():  # noqa: ANN201
    now = timezone.now()
    return selectors.usage_totals(selectors.usage_filter(since=now - timedelta(days=30), until=now))


def test_a_rebuild_counts_rows_written_behind_the_gateways_back(history):
    before = totals()
    Request.objects.bulk_create(  # bulk SQL sends no signal: the rolled day does not know
        [
            Request(
                created_at=timezone.now() - timedelta(days=3), model="gpt-4o", status="success", cost_usd=Decimal("1")
            )
        ]
    )
    assert totals().requests == before.requests

    out = io.StringIO()
    call_command("usage_rollup", "--rebuild", stdout=out)

    assert totals().requests == before.requests + 1
    assert totals().cost_usd == before.cost_usd + 1
    assert "Rolled up" in out.getvalue()


def test_rows_restored_by_import_logs_count_in_the_figures(history, log_dir):
    before = totals()
    lost = make_request(created_at=timezone.now() - timedelta(days=5), cost_usd=Decimal("0.75"))
    entry = {
        "timestamp": lost.created_at.isoformat(),
        "row": {
            "id": str(lost.id),
            "created_at": lost.created_at.isoformat(),
            "application_id": lost.application_id,
            "user_id": lost.user_id,
            "endpoint": lost.endpoint,
            "model": lost.model,
            "status": lost.status,
            "total_tokens": lost.total_tokens,
            "cost_usd": str(lost.cost_usd),
            "latency_ms": lost.latency_ms,
        },
        "request": {"messages": lost.messages, "metadata": {}},
        "response": {"content": lost.response},
    }
    log_dir.mkdir(parents=True)
    (log_dir / journal_name(lost.created_at, lost.model, str(lost.id))).write_text(json.dumps(entry))
    assert totals().requests == before.requests + 1
    lost.delete()  # the database lost it (deleting a row by hand does not mark its day)
    call_command("usage_rollup", "--rebuild", stdout=io.StringIO())
    assert totals().requests == before.requests

    call_command("import_logs", stdout=io.StringIO())

    assert totals().requests == before.requests + 1
    assert totals().cost_usd == before.cost_usd + Decimal("0.75")
