"""The write side: every LLM call goes through these functions, from HTTP views and from Python alike.

Names are loaded on first use, so that modules the services themselves import (limits, keys)
can import from this package without a cycle.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Completion",
    "StreamDone",
    "llm_completion",
    "llm_embed",
    "llm_stream",
    "model_resolve",
    "simple_llm_call_async",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from chat.services import completion

        return getattr(completion, name)
    raise AttributeError(f"module 'chat.services' has no attribute {name!r}")
