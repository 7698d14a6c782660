from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.forms.models import model_to_dict

from chat.models import ApiKey, Request

pytestmark = pytest.mark.django_db


def post(client, body):  # noqa: ANN001
    return client.post("/api/chat", data=json.dumps(body), content_type="application/json")


def snapshot() -> dict:
    """Every field of every row, by id."""
    return {row.id: {**model_to_dict(row), "created_at": row.created_at} for row in Request.objects.all()}


def run(**options) -> str:
    out = io.StringIO()
    call_command("import_logs", stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


@pytest.fixture
def logged_calls(api, log_dir, upstream) -> dict:
    """Three calls through the gateway (one failing at the provider), each with its row and its JSON log."""
    assert post(api, {"query": "Hello, world", "model": "gpt-4o-mini", "user_id": "alice"}).status_code == 200
    assert post(api, {"query": 'Café ✓ "quoted"\nnew line', "model": "gpt-4o-mini"}).status_code == 200
    assert post(api, {"query": "boom [[status:500]]", "model": "gpt-4o-mini"}).status_code == 502
    assert len(list(log_dir.glob("*.json"))) == 3
    return snapshot()


def test_missing_rows_are_restored_exactly_from_the_logs(logged_calls, log_dir):
    Request.objects.all().delete()

    output = run()

    assert snapshot() == logged_calls
    assert "Imported 3 rows from 3 files (0 already present, 0 unreadable)." in output


def test_running_it_again_imports_nothing(logged_calls, log_dir):
    Request.objects.filter(user_id="alice").delete()

    first, second = run(), run()

    assert "Imported 1 rows" in first
    assert "Imported 0 rows from 3 files (3 already present" in second
    assert snapshot() == logged_calls


def test_a_dry_run_counts_without_inserting(logged_calls, log_dir):
    Request.objects.all().delete()

    output = run(dry_run=True)

    assert "Would import 3 rows" in output
    assert not Request.objects.exists()


def test_a_row_whose_key_was_deleted_comes_back_without_its_key(logged_calls, log_dir):
    Request.objects.all().delete()
    ApiKey.objects.all().delete()

    run()

    assert Request.objects.count() == 3
    assert set(Request.objects.values_list("key_id", flat=True)) == {None}


def test_an_unreadable_file_is_skipped_and_reported(logged_calls, log_dir):
    Request.objects.all().delete()
    (log_dir / "20250101T000000000000Z_gpt-4o-mini_broken.json").write_text('{"row": {"id": ')
    (log_dir / ".tmp-half-written.json").write_text("{")

    output = run()

    assert Request.objects.count() == 3
    assert "3 rows from 4 files (0 already present, 1 unreadable)" in output


def test_a_log_dir_elsewhere_can_be_named(logged_calls, log_dir, settings):
    settings.LLM_LOG_DIR = ""
    Request.objects.all().delete()

    run(log_dir=str(log_dir))

    assert snapshot() == logged_calls


def test_without_a_log_folder_it_is_a_command_error(db, settings, tmp_path):
    settings.LLM_LOG_DIR = ""
    with pytest.raises(CommandError, match="LLM_LOG_DIR"):
        run()
    with pytest.raises(CommandError, match="--log-dir"):
        run(log_dir=str(tmp_path / "nowhere"))
