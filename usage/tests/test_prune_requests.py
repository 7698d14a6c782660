from __future__ import annotations

import io
import json
import os
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from chat.journal import journal_name
from chat.models import Request
from usage import selectors
from usage.models import UserDay
from usage.tests.conftest import make_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def aged(db, log_dir):  # noqa: ANN001
    """Rows and log files 10, 100 and 200 days old, and one log file whose name says nothing."""
    now = timezone.now()
    rows = [make_request(created_at=now - timedelta(days=age, hours=1)) for age in (10, 100, 100, 200)]
    log_dir.mkdir(parents=True, exist_ok=True)
    for row in rows:
        (log_dir / journal_name(row.created_at, row.model, str(row.id))).write_text(json.dumps({"id": str(row.id)}))
    odd = log_dir / "renamed-by-hand.json"
    odd.write_text("{}")
    old = (now - timedelta(days=300)).timestamp()
    os.utime(odd, (old, old))
    return rows


def prune(*args: str) -> str:
    out = io.StringIO()
    call_command("prune_requests", *args, stdout=out)
    return out.getvalue()


def test_rows_and_log_files_older_than_the_period_go(aged, log_dir):
    output = prune("--older-than", "90d")

    assert list(Request.objects.values_list("id", flat=True)) == [aged[0].id]
    assert sorted(p.name for p in log_dir.iterdir()) == [
        journal_name(aged[0].created_at, "gpt-4o-mini", str(aged[0].id))
    ]
    assert "Deleted 3 rows and 4 log files" in output


def test_a_dry_run_counts_and_deletes_nothing(aged, log_dir):
    output = prune("--older-than", "90d", "--dry-run")

    assert "Would delete 3 rows and 4 log files" in output
    assert Request.objects.count() == 4
    assert len(list(log_dir.iterdir())) == 5


def test_keep_logs_leaves_the_files(aged, log_dir):
    prune("--older-than", "150d", "--keep-logs")

    assert Request.objects.count() == 3
    assert len(list(log_dir.iterdir())) == 5


def test_the_usage_figures_forget_the_pruned_rows(aged):
    now = timezone.now()
    whole = selectors.usage_filter(since=now - timedelta(days=400), until=now)
    assert selectors.usage_totals(whole).requests == 4

    prune("--older-than", "12w")

    assert selectors.usage_totals(selectors.usage_filter(since=now - timedelta(days=400), until=now)).requests == 1
    assert not UserDay.objects.filter(day__lt=(now - timedelta(weeks=12)).date()).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "soon"], "--older-than"),
        (["--older-than", "0d"], "--older-than"),
        (["--older-than", "90x"], "--older-than"),
        (["--older-than", "90d", "--log-dir", "/nonexistent"], "--log-dir"),
    ],
)
def test_bad_arguments_are_a_clear_command_error(db, args, message):
    with pytest.raises(CommandError, match=message):
        prune(*args)


def test_the_period_is_required(db):
    with pytest.raises(CommandError, match="--older-than"):
        prune()
