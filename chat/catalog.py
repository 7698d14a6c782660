"""The model catalog: public model names mapped to litellm parameters and prices.

Providers appear when their credentials are in the environment; a catalog file
(`MODEL_CATALOG_FILE`, JSON or YAML) adds models or overrides built-in ones. With no
provider at all, the offline demo model answers so a fresh clone works.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

DEMO_MODEL = "offline-demo"
DEMO_PROVIDER = "demo"


@dataclass(frozen=True)
class ModelEntry:
    """One model a caller may name."""

    name: str
    provider: str
    litellm_model: str
    mode: str = "chat"  # chat or embedding
    api_base: str = ""
    api_key: str = field(default="", repr=False)
    api_version: str = ""
    input_cost_per_million: Decimal | None = None
    output_cost_per_million: Decimal | None = None
    cached_input_cost_per_million: Decimal | None = None
    fallbacks: tuple[str, ...] = ()
    timeout: float | None = None
    max_retries: int | None = None
    cache_ttl: int = 0  # seconds a deterministic answer may be served from the response cache

    @property
    def has_price_override(self) -> bool:
        return self.input_cost_per_million is not None or self.output_cost_per_million is not None

    def litellm_params(self) -> dict:
        params: dict = {"model": self.litellm_model}
        if self.api_base:
            params["api_base"] = self.api_base
        if self.api_key:
            params["api_key"] = self.api_key
        if self.api_version:
            params["api_version"] = self.api_version
        return params


OPENAI_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini", "o4-mini")
OPENAI_EMBEDDINGS = ("text-embedding-3-small", "text-embedding-3-large")
ANTHROPIC_MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-5")
GEMINI_MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite")
GROQ_MODELS = ("openai/gpt-oss-120b", "openai/gpt-oss-20b")


def _builtin(s) -> list[ModelEntry]:  # noqa: ANN001 - the settings object
    entries: list[ModelEntry] = []
    if s.OPENAI_API_KEY:
        base = {"api_key": s.OPENAI_API_KEY, "api_base": s.OPENAI_API_BASE}
        entries += [ModelEntry(name=m, provider="openai", litellm_model=m, **base) for m in OPENAI_MODELS]
        entries += [
            ModelEntry(name=m, provider="openai", litellm_model=m, mode="embedding", **base) for m in OPENAI_EMBEDDINGS
        ]
    if s.ANTHROPIC_API_KEY:
        entries += [
            ModelEntry(name=m, provider="anthropic", litellm_model=f"anthropic/{m}", api_key=s.ANTHROPIC_API_KEY)
            for m in ANTHROPIC_MODELS
        ]
    if s.GEMINI_API_KEY:
        entries += [
            ModelEntry(name=m, provider="gemini", litellm_model=f"gemini/{m}", api_key=s.GEMINI_API_KEY)
            for m in GEMINI_MODELS
        ]
    if s.GROQ_API_KEY:
        entries += [
            ModelEntry(name=f"groq/{m}", provider="groq", litellm_model=f"groq/{m}", api_key=s.GROQ_API_KEY)
            for m in GROQ_MODELS
        ]
    if s.AZURE_API_KEY and s.AZURE_API_BASE:
        entries += [
            ModelEntry(
                name=f"azure/{d}",
                provider="azure",
                litellm_model=f"azure/{d}",
                api_key=s.AZURE_API_KEY,
                api_base=s.AZURE_API_BASE,
                api_version=s.AZURE_API_VERSION,
            )
            for d in s.AZURE_DEPLOYMENTS
        ]
    if s.OLLAMA_API_BASE:
        entries += [
            ModelEntry(
                name=f"ollama/{m}", provider="ollama", litellm_model=f"ollama_chat/{m}", api_base=s.OLLAMA_API_BASE
            )
            for m in s.OLLAMA_MODELS
        ]
    if s.VLLM_API_BASE:
        entries += [
            ModelEntry(
                name=f"vllm/{m}",
                provider="vllm",
                litellm_model=f"hosted_vllm/{m}",
                api_base=s.VLLM_API_BASE,
                api_key=s.VLLM_API_KEY,
            )
            for m in s.VLLM_MODELS
        ]
    return entries


def _decimal(value: object) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


def _provider_key(provider: str, api_base: str) -> str:
    """The key a catalog-file model gets when it names none.

    A model on its provider's own service uses that provider's key; a model at another base URL
    gets a placeholder, so a provider key is never sent to a server it does not belong to.
    """
    if api_base:
        return "no-key"
    return {
        "openai": settings.OPENAI_API_KEY,
        "anthropic": settings.ANTHROPIC_API_KEY,
        "gemini": settings.GEMINI_API_KEY,
        "groq": settings.GROQ_API_KEY,
        "azure": settings.AZURE_API_KEY,
    }.get(provider, "")


def _from_file(path: str) -> list[ModelEntry]:
    """Entries of a catalog file; keys come from environment variables it names, never from the file."""
    text = Path(path).read_text()
    if path.endswith((".yaml", ".yml")):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    entries = []
    for item in data.get("models", []):
        key_env = item.get("api_key_env", "")
        provider = item.get("provider", item["model"].split("/", 1)[0] if "/" in item["model"] else "openai")
        api_base = item.get("api_base", "")
        entries.append(
            ModelEntry(
                name=item["name"],
                provider=provider,
                litellm_model=item["model"],
                mode=item.get("mode", "chat"),
                api_base=api_base,
                api_key=os.environ.get(key_env, "") if key_env else _provider_key(provider, api_base),
                api_version=item.get("api_version", ""),
                input_cost_per_million=_decimal(item.get("input_cost_per_million")),
                output_cost_per_million=_decimal(item.get("output_cost_per_million")),
                cached_input_cost_per_million=_decimal(item.get("cached_input_cost_per_million")),
                fallbacks=tuple(item.get("fallbacks", ())),
                timeout=item.get("timeout"),
                max_retries=item.get("max_retries"),
                cache_ttl=int(item.get("cache_ttl", 0)),
            )
        )
    return entries


def demo_entry() -> ModelEntry:
    zero = Decimal(0)
    return ModelEntry(
        name=DEMO_MODEL,
        provider=DEMO_PROVIDER,
        litellm_model="openai/offline-demo",
        input_cost_per_million=zero,
        output_cost_per_million=zero,
    )


@lru_cache(maxsize=1)
def catalog() -> dict[str, ModelEntry]:
    """Every model by public name, built once per process (and again when settings change in tests)."""
    entries = _builtin(settings)
    if settings.MODEL_CATALOG_FILE:
        entries += _from_file(settings.MODEL_CATALOG_FILE)
    by_name = {e.name: e for e in entries}  # later entries (the file) override built-in ones
    if settings.DEMO_MODEL == "on" or (settings.DEMO_MODEL == "auto" and not by_name):
        by_name[DEMO_MODEL] = demo_entry()
    return by_name


def model_names(mode: str | None = None) -> list[str]:
    return sorted(name for name, e in catalog().items() if mode is None or e.mode == mode)


def default_model() -> str | None:
    """LLM_DEFAULT_MODEL when it is in the catalog, else the first chat model (gpt-4o-mini with OpenAI)."""
    chat_models = [name for name, e in catalog().items() if e.mode == "chat"]
    if settings.LLM_DEFAULT_MODEL in chat_models:
        return settings.LLM_DEFAULT_MODEL
    return chat_models[0] if chat_models else None


@receiver(setting_changed)
def _rebuild(**kwargs: object) -> None:
    catalog.cache_clear()
