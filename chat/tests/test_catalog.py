from __future__ import annotations

import json
from decimal import Decimal

import pytest

from chat.catalog import DEMO_MODEL, catalog, default_model


def test_providers_appear_when_their_keys_are_set(settings):
    settings.ANTHROPIC_API_KEY = "sk-ant-test"
    settings.GROQ_API_KEY = "gsk_test"
    settings.OLLAMA_API_BASE = "http://127.0.0.1:11434"
    settings.OLLAMA_MODELS = ["llama3.2"]

    models = catalog()
    assert models["claude-sonnet-4-5"].litellm_model == "anthropic/claude-sonnet-4-5"
    assert models["groq/openai/gpt-oss-120b"].provider == "groq"
    assert models["ollama/llama3.2"].api_base == "http://127.0.0.1:11434"
    assert "gemini-2.5-flash" not in models


def test_openai_models_go_to_the_configured_base_url(settings, upstream):
    assert catalog()["gpt-4o-mini"].litellm_params()["api_base"] == upstream.url


def test_the_demo_model_is_offered_only_when_no_provider_is(settings):
    settings.DEMO_MODEL = "auto"
    assert DEMO_MODEL not in catalog()

    settings.OPENAI_API_KEY = ""
    assert list(catalog()) == [DEMO_MODEL]
    assert default_model() == DEMO_MODEL


def test_a_catalog_file_adds_models_with_prices_and_keys_from_the_environment(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_LLM_KEY", "sk-local-1234567890")
    path = tmp_path / "catalog.json"
    path.write_text(
        json.dumps(
            {
                "models": [
                    {
                        "name": "house-model",
                        "model": "openai/qwen2.5",
                        "api_base": "http://127.0.0.1:9999/v1",
                        "api_key_env": "LOCAL_LLM_KEY",
                        "input_cost_per_million": "0.5",
                        "output_cost_per_million": 1,
                        "fallbacks": ["gpt-4o-mini"],
                    }
                ]
            }
        )
    )
    settings.MODEL_CATALOG_FILE = str(path)

    entry = catalog()["house-model"]
    assert entry.api_key == "sk-local-1234567890"
    assert entry.input_cost_per_million == Decimal("0.5")
    assert entry.fallbacks == ("gpt-4o-mini",)
    assert "sk-local" not in repr(entry)


def test_a_yaml_catalog_file_is_read_too(settings, tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text("models:\n  - name: tiny\n    model: hosted_vllm/tiny\n    api_base: http://127.0.0.1:8001/v1\n")
    settings.MODEL_CATALOG_FILE = str(path)

    assert catalog()["tiny"].provider == "hosted_vllm"


@pytest.mark.parametrize("name", ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5", "gemini-2.5-flash"])
def test_built_in_models_have_prices_in_litellms_map(settings, name):
    from chat import llm

    settings.ANTHROPIC_API_KEY = "x"
    settings.GEMINI_API_KEY = "y"
    assert llm.prices_for(catalog()[name]) is not None
