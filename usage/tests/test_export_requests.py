from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from chat.models import ApiKey, Request
from usage.exports import FIELDS
from usage.tests.conftest import make_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def tricky(history, acme) -> list[Request]:
    """The history plus rows whose text CSV quoting must survive: commas, quotes, newlines, unicode, nulls."""
    key = ApiKey.objects.create(application=acme, prefix="gw_abc", hashed="f" * 64)
    now = timezone.now()
    return [
        *history,
        make_request(
            created_at=now - timedelta(hours=5),
            messages=[{"role": "user", "content": 'He said "hi",\nthen left; ünïcödé ✓'}],
            response="line one\nline two, with a comma",
            metadata={"tags": ["a", "b"], "nested": {"x": 1}},
            key=key,
            ttft_ms=42,
            streamed=True,
        ),
        make_request(
            created_at=now - timedelta(hours=4),
            messages=None,
            response="",
            status="error",
            error_type="Timeout",
            error_message="The provider did not answer in time.",
            http_status=504,
            cost_usd=Decimal("0"),
        ),
    ]


def expected_row(row: Request) -> dict:
    """A row as the export promises it: JSON columns as JSON, money exact, times in ISO 8601."""
    return {
        "id": str(row.id),
        "created_at": row.created_at,
        "application_id": row.application_id,
        "user_id": row.user_id,
        "key_id": row.key_id,
        "endpoint": row.endpoint,
        "model": row.model,
        "provider": row.provider,
        "resolved_model": row.resolved_model,
        "status": row.status,
        "http_status": row.http_status,
        "error_type": row.error_type,
        "error_message": row.error_message,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "total_tokens": row.total_tokens,
        "cached_tokens": row.cached_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "cost_usd": row.cost_usd,
        "latency_ms": row.latency_ms,
        "ttft_ms": row.ttft_ms,
        "streamed": row.streamed,
        "cache_hit": row.cache_hit,
        "messages": row.messages,
        "response": row.response,
        "metadata": row.metadata,
    }


def parse_csv(text: str) -> list[dict]:
    """Read the CSV back into typed values, the way a spreadsheet user's script would."""
    ints = {"http_status", "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens"}
    out = []
    for cells in csv.DictReader(io.StringIO(text)):
        row: dict = dict(cells)
        for name in ints | {"latency_ms"}:
            row[name] = int(row[name])
        row["key_id"] = int(row["key_id"]) if row["key_id"] else None
        row["ttft_ms"] = int(row["ttft_ms"]) if row["ttft_ms"] else None
        row["created_at"] = datetime.fromisoformat(row["created_at"])
        row["cost_usd"] = Decimal(row["cost_usd"])
        row["streamed"], row["cache_hit"] = row["streamed"] == "true", row["cache_hit"] == "true"
        row["messages"] = json.loads(row["messages"]) if row["messages"] else None
        row["metadata"] = json.loads(row["metadata"])
        out.append(row)
    return out


def parse_jsonl(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        row = json.loads(line)
        row["created_at"] = datetime.fromisoformat(row["created_at"])
        row["cost_usd"] = Decimal(row["cost_usd"])
        out.append(row)
    return out


def oldest_first(rows: list[Request]) -> list[Request]:
    return sorted(rows, key=lambda r: (r.created_at, r.id))


def test_a_csv_export_reads_back_as_the_rows(tricky, tmp_path):
    path = tmp_path / "requests.csv"

    call_command("export_requests", output=str(path), stdout=io.StringIO())

    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0].split(",") == FIELDS
    assert parse_csv(text) == [expected_row(r) for r in oldest_first(tricky)]


def test_a_jsonl_export_to_stdout_reads_back_as_the_rows(tricky):
    out = io.StringIO()

    call_command("export_requests", format="jsonl", stdout=out)

    assert parse_jsonl(out.getvalue()) == [expected_row(r) for r in oldest_first(tricky)]


def test_filters_select_the_rows_they_name(tricky):
    now = timezone.now()
    since, until = now - timedelta(days=4), now - timedelta(days=1)
    out = io.StringIO()

    call_command(
        "export_requests",
        format="jsonl",
        since=since.isoformat(),
        until=until.isoformat(),
        user="alice",
        app="acme",
        model="gpt-4o",
        status="success",
        stdout=out,
    )

    wanted = [
        r
        for r in tricky
        if since <= r.created_at < until
        and (r.user_id, r.application_id, r.model, r.status) == ("alice", "acme", "gpt-4o", "success")
    ]
    assert wanted
    assert [row["id"] for row in parse_jsonl(out.getvalue())] == [str(r.id) for r in oldest_first(wanted)]


def test_no_secret_reaches_the_export(tricky):
    out = io.StringIO()

    call_command("export_requests", stdout=out)

    assert "f" * 64 not in out.getvalue()
    assert "hashed" not in out.getvalue()


def test_writing_a_file_without_a_terminal_prints_nothing(tricky, tmp_path):
    out = io.StringIO()

    call_command("export_requests", output=str(tmp_path / "x.csv"), stdout=out)

    assert out.getvalue() == ""


def test_on_a_terminal_a_progress_bar_shows(tricky, tmp_path):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()

    call_command("export_requests", output=str(tmp_path / "x.csv"), stdout=out)

    assert "[" in out.getvalue() and f"Exported {len(tricky)} rows" in out.getvalue()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"since": "last tuesday"}, "--since"),
        ({"until": "2025-02-30"}, "--until"),
        ({"since": "2025-03-01", "until": "2025-01-01"}, "--since must not be after --until"),
        ({"output": "/nonexistent-folder/x.csv"}, "--output"),
    ],
)
def test_bad_arguments_are_a_clear_command_error(db, options, message):
    with pytest.raises(CommandError, match=message):
        call_command("export_requests", stdout=io.StringIO(), **options)


@pytest.mark.parametrize("argv", [["--status", "broken"], ["--format", "xml"]])
def test_bad_choices_are_refused(db, argv):
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("export_requests", *argv, stdout=io.StringIO())


def test_from_the_shell_a_bad_argument_exits_non_zero():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gateway.test_settings"}
    done = subprocess.run(
        [sys.executable, "manage.py", "export_requests", "--since", "soon"],
        cwd=Path(settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode != 0
    assert "--since" in done.stderr
    assert done.stdout == ""
