"""No secret anywhere: what is stored of prompts follows LLM_STORE_CONTENT, and a scan after a busy run finds no key."""

from __future__ import annotations

import json
import logging
import re
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import NoReverseMatch, reverse

from chat.models import ApiKey, Request
from chat.services.keys import key_create
from conftest import PROVIDER_KEY

pytestmark = pytest.mark.django_db

PERSONAL = "Mail bob@example.com or call +1 415 555 0100 about card 4111 1111 1111 1111"
PASTED_KEY = "sk-proj-pasted0123456789abcdefXYZ"


def post(client: Client, path: str, body: dict):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def consumed(response):
    """A streamed answer read to its end, as a client does."""
    b"".join(response)
    return response


def stored(log_dir: Path) -> tuple[Request, str, dict]:
    """The one row, the text of the one JSON log file, and that file parsed."""
    (path,) = log_dir.glob("*.json")
    text = path.read_text()
    return Request.objects.get(), text, json.loads(text)


def test_full_content_keeps_the_words_and_masks_the_secrets(api, log_dir, settings):
    settings.LLM_STORE_CONTENT = "full"

    response = post(api, "/api/chat", {"query": f"{PERSONAL}, key {PASTED_KEY}", "model": "gpt-4o-mini"})

    assert response.status_code == 200
    row, text, entry = stored(log_dir)
    content = row.messages[0]["content"]
    assert "bob@example.com" in content and "4111 1111 1111 1111" in content
    assert PASTED_KEY not in content and "[secret]" in content
    assert "bob@example.com" in row.response and PASTED_KEY not in row.response
    assert entry["request"]["messages"] == row.messages
    assert entry["response"]["content"] == row.response
    assert PASTED_KEY not in text


def test_redacted_content_masks_personal_data_as_well(api, log_dir, settings, upstream):
    settings.LLM_STORE_CONTENT = "redacted"

    response = post(api, "/api/chat", {"query": f"{PERSONAL}, key {PASTED_KEY}", "model": "gpt-4o-mini"})

    assert response.status_code == 200
    assert "bob@example.com" in response.json()["response"]  # the caller gets the real answer
    assert "bob@example.com" in upstream.stats.last_body["messages"][0]["content"]
    row, text, entry = stored(log_dir)
    content = row.messages[0]["content"]
    assert "[email]" in content and "[card]" in content and "[phone]" in content and "[secret]" in content
    for word in ("bob@example.com", "4111", "555 0100", PASTED_KEY):
        assert word not in content and word not in row.response and word not in text
    assert entry["request"]["messages"] == row.messages


def test_no_content_keeps_the_figures_but_neither_prompt_nor_answer(api, log_dir, settings):
    settings.LLM_STORE_CONTENT = "none"

    response = post(api, "/api/chat", {"query": PERSONAL, "model": "gpt-4o-mini"})

    assert response.status_code == 200
    row, text, entry = stored(log_dir)
    assert (row.messages, row.response) == (None, "")
    assert (entry["request"]["messages"], entry["response"]["content"]) == (None, "")
    assert row.total_tokens > 0 and row.cost_usd > 0
    assert "bob" not in text and "4111" not in text


@pytest.mark.parametrize("mode", ["full", "redacted", "none"])
def test_a_streamed_answer_is_stored_by_the_same_setting(api, log_dir, settings, mode):
    settings.LLM_STORE_CONTENT = mode
    body = {"messages": [{"role": "user", "content": PERSONAL}], "model": "gpt-4o-mini", "stream": True}

    response = post(api, "/llm/chat", body)
    b"".join(response)

    row, text, _ = stored(log_dir)
    assert row.streamed
    assert ("bob@example.com" in row.response) is (mode == "full")
    assert ("bob@example.com" in text) is (mode == "full")
    if mode == "none":
        assert (row.messages, row.response) == (None, "")


def test_a_key_pasted_into_metadata_is_masked_in_the_row_and_the_log(api, owner_key, log_dir):
    body = {"messages": [{"role": "user", "content": "hi"}], "metadata": {"note": f"key {owner_key}"}}

    assert post(api, "/llm/chat", body).status_code == 200

    row, text, _ = stored(log_dir)
    assert owner_key not in json.dumps(row.metadata)
    assert owner_key not in text


# --- The scan -----------------------------------------------------------------------------


def database_text() -> str:
    """Every value of every table, as text."""
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - names from the schema
            parts.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(parts)


def admin_text(staff_client: Client) -> str:
    """Every list and change page of the admin."""
    pages = []
    for model in admin.site._registry:
        meta = model._meta
        try:
            pages.append(staff_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")))
        except NoReverseMatch:
            continue
        for pk in model.objects.values_list("pk", flat=True)[:20]:
            pages.append(staff_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[pk])))
    assert all(page.status_code == 200 for page in pages), [p.status_code for p in pages]
    return "\n".join(page.content.decode() for page in pages)


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume")
def test_a_scan_of_rows_logs_exports_and_admin_after_a_busy_run_finds_no_key_material(
    acme, owner_key, teammate_key, log_dir, settings, tmp_path, caplog
):
    settings.LLM_STORE_CONTENT = "full"
    settings.LLM_TIMEOUT_SECONDS = 1
    caplog.set_level(logging.DEBUG)
    limited = key_create(application=acme, name="limited", rpm=1)[1]
    broke = key_create(application=acme, name="broke", budget_usd=Decimal("0.0000001"), budget_period="day")[1]
    out = StringIO()
    call_command("create_api_key", "--app", "acme", "--quiet", stdout=out)
    from_command = out.getvalue().strip()
    keys = [owner_key, teammate_key, limited, broke, from_command]

    def as_(raw: str, scheme: str = "Bearer") -> Client:
        return Client(HTTP_AUTHORIZATION=f"{scheme} {raw}")

    owner = as_(owner_key)
    chat = {"messages": [{"role": "user", "content": "Hello"}], "model": "gpt-4o-mini"}
    pasted = {**chat, "messages": [{"role": "user", "content": f"Authorization: Bearer {owner_key}"}]}
    calls = [
        (owner, "/api/chat", {"query": "Hello", "model": "gpt-4o-mini", "user_id": "alice"}, 200),
        (owner, "/llm/simple", {"prompt": f"my keys: {owner_key} and {PROVIDER_KEY}"}, 200),
        (owner, "/llm/chat", pasted, 200),
        (owner, "/llm/chat", {**chat, "stream": True}, 200),
        (owner, "/v1/chat/completions", chat, 200),
        (owner, "/v1/embeddings", {"model": "text-embedding-3-small", "input": f"embed {owner_key}"}, 200),
        (owner, "/llm/simple", {"prompt": "fail [[status:500]]"}, 502),
        (owner, "/llm/simple", {"prompt": "slow [[sleep:3]]"}, 504),
        (owner, "/api/chat", {"query": "hi", "model": "gpt-4o-mini", "application_id": "other"}, 403),
        (as_(teammate_key), "/api/chat", {"query": "hi", "model": "gpt-4o-mini"}, 200),
        (as_(owner_key + "x"), "/llm/simple", {"prompt": "a typo in the key"}, 401),
        (as_(owner_key, "Token"), "/llm/simple", {"prompt": "the wrong scheme"}, 401),
        (as_(limited), "/llm/simple", {"prompt": "one"}, 200),
        (as_(limited), "/llm/simple", {"prompt": "two"}, 429),
        (as_(broke), "/llm/simple", {"prompt": "hi"}, 429),
        (as_(from_command), "/llm/simple", {"prompt": "hi"}, 200),
    ]
    for client, path, body, status in calls:
        response = consumed(post(client, path, body))
        assert response.status_code == status, (path, body, response.status_code)
    staff = get_user_model().objects.create_superuser("root", "root@example.com", "a long enough password")
    browser = Client()
    browser.force_login(staff)
    shown = browser.post(
        "/admin/chat/apikey/add/",
        {"application": acme.pk, "name": "admin", "budget_period": "month", "expires_at_0": "", "expires_at_1": ""},
    )
    from_admin = re.search(r'value="(gw_[A-Za-z0-9_-]+)"', shown.content.decode()).group(1)
    keys.append(from_admin)
    assert ApiKey.objects.filter(prefix=from_admin[:11]).exists()
    for fmt in ("csv", "jsonl"):
        call_command("export_requests", "--format", fmt, "--output", str(tmp_path / f"requests.{fmt}"))
    dump = StringIO()
    call_command("dumpdata", "--natural-foreign", stdout=dump)

    places = {
        "database": database_text(),
        "JSON logs": "\n".join(p.read_text() for p in log_dir.glob("*.json")),
        "exports": "\n".join(p.read_text() for p in tmp_path.glob("requests.*")) + dump.getvalue(),
        "admin": admin_text(browser),
        "log lines": caplog.text + "\n".join(str(r.exc_text or "") for r in caplog.records),
    }
    assert Request.objects.count() == len([c for c in calls if c[3] in (200, 502, 504)]) == 11
    assert len(list(log_dir.glob("*.json"))) == 11
    needles = {PROVIDER_KEY: "the provider key"}
    for raw in keys:
        needles[raw] = f"gateway key {raw[:11]}"
        needles[raw[11:]] = f"the secret part of gateway key {raw[:11]}"
    found = [(place, what) for place, text in places.items() for needle, what in needles.items() if needle in text]
    assert found == []
    assert "Bearer gw_" not in "".join(places.values())
