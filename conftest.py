"""Shared fixtures: a local OpenAI-compatible upstream, the gateway pointed at it, and a small cast."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from bench.upstream import Upstream

PROVIDER_KEY = "sk-test-provider-secret-0123456789abcdef"


@pytest.fixture(scope="session")
def upstream():
    server = Upstream()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def gateway_settings(settings, upstream):
    """Every test talks to the local upstream through litellm's real HTTP path."""
    from django.core.cache import cache

    from chat.limits import limits_reset
    from chat.services.keys import caller_cache_clear

    settings.OPENAI_API_KEY = PROVIDER_KEY
    settings.OPENAI_API_BASE = upstream.url
    settings.DEMO_MODEL = "on"
    caller_cache_clear()
    limits_reset()  # rate-limit and spend counters outlive a test's rolled-back rows
    cache.clear()  # so do cached answers, in Redis even from an earlier run
    yield settings
    caller_cache_clear()


@pytest.fixture
def log_dir(settings, tmp_path) -> Path:
    folder = tmp_path / "llm"
    settings.LLM_LOG_DIR = str(folder)
    return folder


@pytest.fixture
def acme(db):
    from chat.models import Application

    return Application.objects.create(name="acme", description="The owner's application")


@pytest.fixture
def owner_key(acme) -> str:
    from chat.services.keys import key_create

    _, raw = key_create(application=acme, name="owner")
    return raw


@pytest.fixture
def teammate_key(acme) -> str:
    from chat.services.keys import key_create

    _, raw = key_create(application=acme, name="teammate", user_id="bob")
    return raw


@pytest.fixture
def stranger_key(db) -> str:
    from chat.models import Application
    from chat.services.keys import key_create

    _, raw = key_create(application=Application.objects.create(name="stranger-app"), name="stranger")
    return raw


@pytest.fixture
def api(owner_key) -> Client:
    """A client calling with the owner's key."""
    return Client(HTTP_AUTHORIZATION=f"Bearer {owner_key}")


@pytest.fixture
def anon() -> Client:
    return Client()
