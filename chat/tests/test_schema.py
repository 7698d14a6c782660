"""The OpenAPI schema, and generated requests against every operation it describes."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from chat.models import Request

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))  # bench/fuzz.py raises this to thousands


def _schema():
    from gateway.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/", application)


schema = _schema()


def test_the_schema_and_its_docs_page_are_served_without_a_key(anon, db):
    spec = anon.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    docs = anon.get("/api/docs/")

    assert {"/api/chat", "/llm/simple", "/llm/chat", "/api/models", "/health"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["gatewayKey"]["scheme"] == "bearer"
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html and "//cdn" not in html and "https://" not in html.split("<body")[0]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
)
def test_generated_requests_never_get_a_5xx_and_rejected_ones_write_no_row(case, owner_key, settings_for_fuzz):
    before = Request.objects.count()

    response = case.call(headers={"Authorization": f"Bearer {owner_key}"})

    assert response.status_code < 500, (case.method, case.path, case.body, response.text[:500])
    if response.status_code >= 400:
        assert Request.objects.count() == before, (case.method, case.path, case.body, response.status_code)
        assert "error" in response.json()


@pytest.fixture
def settings_for_fuzz(settings):
    """Like Django's test client: the test's own connection must stay open between requests."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    settings.LLM_TIMEOUT_SECONDS = 2
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield settings
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
