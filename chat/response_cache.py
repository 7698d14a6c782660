"""The response cache: identical deterministic requests answered from the cache (Redis when configured)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.cache import cache

from chat.catalog import ModelEntry

DEFAULT_TTL = 3600
PREFIX = "gw:response:"


def cache_ttl(entry: ModelEntry, options: dict, wanted: bool | None) -> int:
    """Seconds to keep this request's answer, 0 for not cached.

    A caller may switch the cache on (`True`) or off (`False`) per request; otherwise a model with
    `cache_ttl` in the catalog caches requests that ask for a deterministic answer (temperature 0).
    """
    if wanted is False or options.get("n", 1) != 1:
        return 0
    if wanted is True:
        return entry.cache_ttl or DEFAULT_TTL
    return entry.cache_ttl if entry.cache_ttl and options.get("temperature") == 0 else 0


def cache_key(entry: ModelEntry, messages: list[dict], options: dict) -> str:
    material = json.dumps([entry.name, entry.litellm_model, messages, options], sort_keys=True, default=str)
    return PREFIX + hashlib.sha256(material.encode()).hexdigest()


async def cache_get(key: str) -> dict[str, Any] | None:
    try:
        return await cache.aget(key)
    except Exception:  # noqa: BLE001 - a cache outage means a miss, never a failed call
        return None


async def cache_put(key: str, value: dict[str, Any], ttl: int) -> None:
    try:
        await cache.aset(key, value, ttl)
    except Exception:  # noqa: BLE001 - the answer is served either way
        pass
