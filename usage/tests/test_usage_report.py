from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

pytestmark = pytest.mark.django_db


def report(*args: str) -> str:
    out = io.StringIO()
    call_command("usage_report", *args, stdout=out)
    return out.getvalue()


def sums(rows, field):  # noqa: ANN001
    out = defaultdict(lambda: {"requests": 0, "cost": Decimal(0), "tokens": 0})
    for row in rows:
        entry = out[getattr(row, field)]
        entry["requests"] += 1
        entry["cost"] += row.cost_usd
        entry["tokens"] += row.total_tokens
    return out


def in_last_days(history, days: int):  # noqa: ANN001
    start = timezone.localtime(timezone.now()).replace(hour=0, minute=0, second=0, microsecond=0)
    start -= timedelta(days=days - 1)
    return [r for r in history if r.created_at >= start]


@pytest.mark.parametrize(("by", "field"), [("user", "user_id"), ("app", "application_id"), ("model", "model")])
def test_the_json_report_equals_the_sums_per_group(history, by, field):
    body = json.loads(report("--by", by, "--format", "json"))

    expected = sums(in_last_days(history, 30), field)
    got = {
        row[field]: {"requests": row["requests"], "cost": Decimal(row["cost_usd"]), "tokens": row["total_tokens"]}
        for row in body["rows"]
    }
    assert got == dict(expected)
    assert body["total"]["requests"] == sum(e["requests"] for e in expected.values())
    assert Decimal(body["total"]["cost_usd"]) == sum(e["cost"] for e in expected.values())
    costs = [Decimal(row["cost_usd"]) for row in body["rows"]]
    assert costs == sorted(costs, reverse=True)


def test_the_csv_report_has_a_header_the_groups_and_a_total(history):
    rows = list(csv.DictReader(io.StringIO(report("--by", "model", "--format", "csv", "--since", "2000-01-01"))))

    assert [r["model"] for r in rows][-1] == "(total)"
    assert int(rows[-1]["requests"]) == len(history)
    assert {r["model"] for r in rows[:-1]} == {r.model for r in history}
    assert all(r["p95_latency_ms"] for r in rows)


def test_the_table_report_is_aligned_text_with_a_total_line(history):
    text = report("--by", "app", "--since", "2000-01-01", "--limit", "1")

    lines = text.splitlines()
    assert lines[0].startswith("Usage by application_id")
    assert lines[1].split()[:3] == ["application_id", "requests", "errors"]
    assert len(lines) == 5  # title, header, one group, rule, total
    assert lines[-1].split()[:2] == ["(total)", str(len(history))]


def test_an_app_and_model_filter_narrow_the_report(history):
    body = json.loads(
        report("--by", "user", "--format", "json", "--app", "globex", "--model", "gpt-4o", "--since", "2000-01-01")
    )

    expected = sums([r for r in history if (r.application_id, r.model) == ("globex", "gpt-4o")], "user_id")
    assert {row["user_id"]: row["requests"] for row in body["rows"]} == {k: v["requests"] for k, v in expected.items()}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "someday"], "--since"),
        (["--since", "2025-02-01", "--until", "2025-01-01"], "--since must not be after --until"),
        (["--limit", "0"], "--limit"),
        (["--by", "team"], "invalid choice"),
        (["--format", "xml"], "invalid choice"),
    ],
)
def test_bad_arguments_are_a_clear_command_error(db, args, message):
    with pytest.raises(CommandError, match=message):
        report(*args)
