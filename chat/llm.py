"""The gateway's one door to litellm: every provider call, price lookup and token count goes through here."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# litellm's shared HTTP client would queue calls beyond 500 open connections to one provider host; a burst of
# slow answers (a thousand callers waiting seconds each) must not wait for one another.
os.environ.setdefault("AIOHTTP_CONNECTOR_LIMIT", "4000")
os.environ.setdefault("AIOHTTP_CONNECTOR_LIMIT_PER_HOST", "4000")
import litellm  # noqa: E402
import litellm.utils  # noqa: E402
from litellm import exceptions as llm_errors  # noqa: E402

from chat.catalog import DEMO_PROVIDER, ModelEntry  # noqa: E402
from chat.errors import (  # noqa: E402
    BadRequest,
    GatewayError,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
)
from chat.pricing import Prices, Usage, decimal_price  # noqa: E402
from chat.redact import redact_secrets  # noqa: E402

# The gateway records, prices and logs every call itself: litellm's own logging is switched off.
litellm.suppress_debug_info = True
litellm.telemetry = False
litellm.drop_params = True  # a parameter a provider does not take is dropped, not an error
litellm.turn_off_message_logging = True
litellm.disable_streaming_logging = True
litellm.callbacks = []
litellm.success_callback = []
litellm.failure_callback = []
litellm._async_success_callback = []
litellm._async_failure_callback = []


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


async def _anoop(*args: Any, **kwargs: Any) -> None:
    return None


def _switch_off_litellm_bookkeeping() -> None:
    """Stop the per-call work litellm does for its own callbacks, which the gateway does once itself.

    With no callbacks registered, litellm still builds a standard logging payload, redacts it, prices the
    call and stamps timing metadata on every response (about a quarter of its CPU time per non-streamed
    call, see docs/performance.md). The gateway prices and records each call itself.
    """
    from litellm.litellm_core_utils.litellm_logging import Logging

    Logging.async_success_handler = _anoop
    Logging.dispatch_success_handlers = _anoop
    Logging.success_handler = _noop
    Logging.handle_sync_success_callbacks_for_async_calls = _noop
    litellm.utils.update_response_metadata = _noop


_switch_off_litellm_bookkeeping()


@dataclass
class Answer:
    """A provider's whole answer, reduced to what the gateway needs."""

    content: str
    usage: Usage
    model: str
    response: Any  # litellm's ModelResponse, for callers that return the OpenAI shape
    usage_reported: bool = True


@lru_cache(maxsize=512)
def _provider_of(litellm_model: str, api_base: str) -> str | None:
    """litellm's provider for a model, worked out once: with a custom api_base it costs ~0.7 ms a call."""
    try:
        return litellm.get_llm_provider(model=litellm_model, api_base=api_base or None)[1]
    except Exception:  # noqa: BLE001 - litellm will say what is wrong when the call is made
        return None


def _call_params(entry: ModelEntry, timeout: float, max_retries: int) -> dict[str, Any]:
    params = entry.litellm_params()
    provider = _provider_of(entry.litellm_model, entry.api_base)
    if provider:
        params["custom_llm_provider"] = provider
    params["timeout"] = entry.timeout or timeout
    params["max_retries"] = entry.max_retries if entry.max_retries is not None else max_retries
    # With `tools`, litellm first imports its MCP gateway, which needs the optional `mcp` package; the
    # gateway passes tools straight to the provider, so that detour is skipped.
    params["_skip_mcp_handler"] = True
    return params


def demo_answer(messages: list[dict]) -> str:
    last = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "") or ""
    if not isinstance(last, str):
        last = " ".join(p.get("text", "") for p in last if isinstance(p, dict))
    said = last if len(last) <= 200 else last[:200] + "…"
    return (
        f'This is the offline demo model. You said: "{said}". It answers without calling any provider; '
        "set OPENAI_API_KEY (or another provider key) to reach real models."
    )


def usage_of(raw: Any) -> Usage | None:
    """Token usage from a litellm response or usage object, None when the provider sent none."""
    if raw is None:
        return None
    get = raw.get if isinstance(raw, dict) else lambda k, d=None: getattr(raw, k, d)
    prompt = get("prompt_tokens") or 0
    completion = get("completion_tokens") or 0
    if not prompt and not completion:
        return None
    prompt_details = get("prompt_tokens_details")
    completion_details = get("completion_tokens_details")
    cached = _detail(prompt_details, "cached_tokens")
    reasoning = _detail(completion_details, "reasoning_tokens")
    return Usage(prompt=int(prompt), completion=int(completion), cached=cached, reasoning=reasoning)


def _detail(details: Any, name: str) -> int:
    if details is None:
        return 0
    value = details.get(name) if isinstance(details, dict) else getattr(details, name, None)
    return int(value or 0)


async def complete(
    entry: ModelEntry, messages: list[dict], options: dict[str, Any], *, timeout: float, max_retries: int
) -> Answer:
    """One non-streamed completion."""
    params = _call_params(entry, timeout, max_retries)
    if entry.provider == DEMO_PROVIDER:
        params["mock_response"] = demo_answer(messages)
    try:
        response = await litellm.acompletion(messages=messages, **options, **params)
    except Exception as exc:
        raise provider_error(exc) from exc
    choice = response.choices[0] if response.choices else None
    message = getattr(choice, "message", None)
    content = (getattr(message, "content", None) or "") if message else ""
    # The demo model's canned usage is replaced by a real count of its words.
    usage = None if entry.provider == DEMO_PROVIDER else usage_of(getattr(response, "usage", None))
    reported = usage is not None
    if usage is None:
        usage = Usage(prompt=count_tokens(entry, messages=messages), completion=count_tokens(entry, text=content))
    return Answer(
        content=content,
        usage=usage,
        model=getattr(response, "model", "") or entry.litellm_model,
        response=response,
        usage_reported=reported,
    )


async def stream(
    entry: ModelEntry, messages: list[dict], options: dict[str, Any], *, timeout: float, max_retries: int
) -> AsyncIterator[Any]:
    """Streamed completion chunks; the provider is always asked for a final usage chunk."""
    params = _call_params(entry, timeout, max_retries)
    if entry.provider == DEMO_PROVIDER:
        params["mock_response"] = demo_answer(messages)
    options = {**options, "stream": True, "stream_options": {"include_usage": True}}
    try:
        response = await litellm.acompletion(messages=messages, **options, **params)
    except Exception as exc:
        raise provider_error(exc) from exc
    try:
        async for chunk in response:
            yield chunk
    except GatewayError:
        raise
    except Exception as exc:
        raise provider_error(exc) from exc
    finally:
        await close_stream(response)


async def close_stream(response: Any) -> None:
    """Close the upstream connection of a stream the gateway stops reading."""
    for target in (response, getattr(response, "completion_stream", None)):
        closer = getattr(target, "aclose", None) or getattr(target, "close", None)
        if closer is None:
            continue
        try:
            result = closer()
            if hasattr(result, "__await__"):
                await result
        except Exception:  # noqa: BLE001 - closing a dead stream may fail; nothing is left to free
            pass


def response_dump(response: Any) -> dict:
    """A litellm response as plain JSON-able data, for the response cache."""
    return response.model_dump() if hasattr(response, "model_dump") else dict(response)


def response_load(data: dict) -> Any:
    return litellm.ModelResponse(**data)


def chunk_text(chunk: Any) -> str:
    choices = getattr(chunk, "choices", None)
    if not choices:
        return ""
    delta = getattr(choices[0], "delta", None)
    return (getattr(delta, "content", None) or "") if delta else ""


async def embed(entry: ModelEntry, inputs: list[str], options: dict[str, Any], *, timeout: float) -> tuple[Any, Usage]:
    params = _call_params(entry, timeout, 0)
    params.pop("max_retries", None)
    params.pop("_skip_mcp_handler", None)
    try:
        response = await litellm.aembedding(input=inputs, **options, **params)
    except Exception as exc:
        raise provider_error(exc) from exc
    usage = usage_of(getattr(response, "usage", None))
    if usage is None:
        prompt = getattr(getattr(response, "usage", None), "prompt_tokens", 0) or 0
        usage = Usage(prompt=int(prompt))
    return response, usage


def provider_error(exc: Exception) -> GatewayError:
    """The client-facing error for an exception litellm raised; messages are scrubbed of secrets."""
    message = redact_secrets(str(getattr(exc, "message", "") or exc))[:2000]
    name = type(exc).__name__
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, llm_errors.Timeout):
        return ProviderTimeout(f"The provider did not answer in time: {message}", details={"provider_error": name})
    if isinstance(exc, llm_errors.RateLimitError):
        return ProviderRateLimited(
            f"The provider is rate limiting: {message}", headers={"Retry-After": "1"}, details={"provider_error": name}
        )
    if isinstance(exc, (llm_errors.ContextWindowExceededError, llm_errors.ContentPolicyViolationError)):
        return BadRequest(
            f"The provider refused the request: {message}",
            code="provider_bad_request",
            details={"provider_error": name},
        )
    if isinstance(exc, llm_errors.BadRequestError) and not isinstance(exc, llm_errors.APIConnectionError):
        return BadRequest(
            f"The provider refused the request: {message}",
            code="provider_bad_request",
            details={"provider_error": name},
        )
    return ProviderError(f"The provider failed: {message}", details={"provider_error": name})


@lru_cache(maxsize=512)
def map_prices(litellm_model: str) -> Prices | None:
    """Per-token prices from litellm's cost map, looked up once per model."""
    info = litellm.model_cost.get(litellm_model)
    if info is None and "/" in litellm_model:
        info = litellm.model_cost.get(litellm_model.split("/", 1)[1])
    if not info or info.get("input_cost_per_token") is None:
        return None
    return Prices(
        input=decimal_price(info.get("input_cost_per_token")) or 0,
        output=decimal_price(info.get("output_cost_per_token")) or 0,
        cached_input=decimal_price(info.get("cache_read_input_token_cost")),
        reasoning=decimal_price(info.get("output_cost_per_reasoning_token")),
    )


@lru_cache(maxsize=512)
def prices_for(entry: ModelEntry) -> Prices | None:
    """The catalog's override where it has one, else litellm's map."""
    mapped = map_prices(entry.litellm_model)
    if not entry.has_price_override:
        return mapped

    def pick(override: Decimal | None, fallback: Decimal | None) -> Decimal:
        return override if override is not None else (fallback if fallback is not None else Decimal(0))

    return Prices.per_million(
        pick(entry.input_cost_per_million, mapped.input_per_million() if mapped else None),
        pick(entry.output_cost_per_million, mapped.output_per_million() if mapped else None),
        entry.cached_input_cost_per_million,
    )


def count_tokens(entry: ModelEntry, *, messages: list[dict] | None = None, text: str | None = None) -> int:
    """litellm's token count, for providers that report no usage."""
    try:
        if messages is not None:
            return int(litellm.token_counter(model=entry.litellm_model, messages=messages))
        return int(litellm.token_counter(model=entry.litellm_model, text=text or "", count_response_tokens=True))
    except Exception:  # noqa: BLE001 - an unknown tokenizer falls back to a rough count
        words = text if text is not None else " ".join(str(m.get("content", "")) for m in messages or [])
        return max(1, len(words) // 4) if words else 0
