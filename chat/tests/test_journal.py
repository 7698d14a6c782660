from __future__ import annotations

import json

import pytest

from chat.models import Request
from conftest import PROVIDER_KEY

pytestmark = pytest.mark.django_db


def post(client, body):
    return client.post("/api/chat", data=json.dumps(body), content_type="application/json")


def test_each_call_writes_one_log_file_named_after_it(api, log_dir):
    body = post(api, {"query": "log me", "model": "gpt-4o-mini", "user_id": "alice"}).json()

    files = list(log_dir.glob("*.json"))
    assert len(files) == 1
    assert files[0].name.endswith(f"_gpt-4o-mini_{body['request_id']}.json")
    entry = json.loads(files[0].read_text())
    assert entry["request_id"] == body["request_id"]
    assert entry["model"] == "gpt-4o-mini"
    assert entry["success"] is True
    assert entry["error"] is None
    assert entry["request"]["messages"] == [{"role": "user", "content": "log me"}]
    assert entry["response"]["content"] == "Echo: log me"
    assert entry["response"]["usage"]["total"] == 5
    assert entry["duration_ms"] == Request.objects.get().latency_ms
    assert not list(log_dir.glob(".tmp-*")), "no temporary file is left behind"


def test_a_failed_call_is_logged_with_its_error(api, log_dir):
    post(api, {"query": "x [[status:500]]", "model": "gpt-4o-mini"})

    entry = json.loads(next(log_dir.glob("*.json")).read_text())
    assert entry["success"] is False
    assert entry["error"]["type"] == "InternalServerError"


def test_after_n_calls_there_are_n_rows_and_n_files(api, log_dir):
    for i in range(7):
        post(api, {"query": f"call {i}" + (" [[status:429]]" if i % 3 == 0 else ""), "model": "gpt-4o-mini"})
    post(api, {"query": "", "model": "gpt-4o-mini"})  # refused: no row, no file

    ids = {f.stem.rsplit("_", 1)[1] for f in log_dir.glob("*.json")}
    assert len(ids) == 7
    assert ids == {str(pk) for pk in Request.objects.values_list("id", flat=True)}


def test_no_secret_reaches_a_log_file_or_a_row(api, owner_key, log_dir):
    post(api, {"query": f"my keys are {PROVIDER_KEY} and {owner_key}", "model": "gpt-4o-mini"})
    post(api, {"query": "fail [[status:500]]", "model": "gpt-4o-mini"})

    dumped = "".join(f.read_text() for f in log_dir.glob("*.json"))
    dumped += json.dumps(list(Request.objects.values()), default=str)
    for secret in (PROVIDER_KEY, owner_key, owner_key[11:]):
        assert secret not in dumped


def test_content_is_not_stored_when_the_setting_says_none(api, log_dir, settings):
    settings.LLM_STORE_CONTENT = "none"
    post(api, {"query": "private words", "model": "gpt-4o-mini"})

    row = Request.objects.get()
    assert row.messages is None and row.response == ""
    assert row.total_tokens == 5
    assert "private" not in next(log_dir.glob("*.json")).read_text()


def test_redacted_content_masks_personal_data(api, settings):
    settings.LLM_STORE_CONTENT = "redacted"
    post(api, {"query": "mail jane@example.com or call +44 20 7946 0958", "model": "gpt-4o-mini"})

    row = Request.objects.get()
    stored = json.dumps(row.messages) + row.response
    assert "jane@example.com" not in stored and "7946" not in stored
    assert "[email]" in stored and "[phone]" in stored
