"""The write side: every LLM call goes through these functions, from HTTP views and from Python alike."""

from chat.services.completion import (
    Completion,
    StreamDone,
    llm_completion,
    llm_embed,
    llm_stream,
    model_resolve,
    simple_llm_call_async,
)

__all__ = [
    "Completion",
    "StreamDone",
    "llm_completion",
    "llm_embed",
    "llm_stream",
    "model_resolve",
    "simple_llm_call_async",
]
