"""LLM calls: resolve the model, admit the caller, call litellm, price the answer, record it once."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from chat import llm
from chat.catalog import ModelEntry, catalog, default_model, model_names
from chat.db import run_db
from chat.errors import BadRequest, GatewayError, ProviderError
from chat.journal import journal_write
from chat.limits import Admission, limits_admit, limits_settle
from chat.models import Request
from chat.pricing import Usage, cost_of
from chat.redact import redact_secrets, redact_value, stored_content
from chat.response_cache import cache_get, cache_key, cache_put, cache_ttl
from chat.services.keys import Caller

logger = logging.getLogger(__name__)

# Request options a caller may set; anything that says where or with which credentials to connect is not here.
OPTIONS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "seed",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "user",
        "reasoning_effort",
    }
)
ANONYMOUS = Caller()


@dataclass(frozen=True)
class Completion:
    """A finished call, as the in-process API and the views return it."""

    request_id: uuid.UUID
    content: str
    model: str
    usage: Usage
    cost_usd: Decimal
    duration_ms: int
    created_at: datetime
    application_id: str = ""
    user_id: str = ""
    response: Any = field(default=None, repr=False)  # litellm's OpenAI-shaped response


@dataclass(frozen=True)
class StreamDone:
    """The last item of `llm_stream`: the recorded call."""

    completion: Completion
    ttft_ms: int | None


def model_resolve(name: str | None, *, mode: str = "chat") -> ModelEntry:
    """The catalog entry for `name` (the default chat model when empty), or a 400 listing the choices."""
    name = name or (default_model() if mode == "chat" else None)
    entry = catalog().get(name or "")
    if entry is None or entry.mode != mode:
        available = model_names(mode)
        raise BadRequest(
            f"Unknown model '{name}'. Available: {', '.join(available) or 'none'}.",
            param="model",
            code="model_not_found",
            details={"available": available},
        )
    return entry


class _Call:
    """Bookkeeping for one call between admission and its row."""

    def __init__(
        self,
        *,
        entry: ModelEntry,
        caller: Caller,
        endpoint: str,
        messages: Any,
        metadata: dict | None,
        streamed: bool,
        request_id: uuid.UUID | None = None,
    ) -> None:
        self.id = request_id or uuid.uuid4()
        self.created_at = timezone.now()
        self.started = time.perf_counter()
        self.entry = entry
        self.caller = caller
        self.endpoint = endpoint
        self.messages = messages
        self.metadata = metadata or {}
        self.streamed = streamed
        self.served_by = entry  # the fallback that answered, when the model itself failed
        self.failures: list[str] = []

    def elapsed_ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)

    def record(
        self,
        *,
        status: str,
        content: str = "",
        usage: Usage | None = None,
        cost: Decimal = Decimal(0),
        error: GatewayError | None = None,
        ttft_ms: int | None = None,
        extra: dict | None = None,
        cache_hit: bool = False,
    ) -> Completion:
        """Build the row and the log entry; `save` writes them."""
        usage = usage or Usage()
        duration = self.elapsed_ms()
        messages, answer = stored_content(self.messages, content, settings.LLM_STORE_CONTENT)
        # Metadata is the caller's free text too: a key pasted into it is masked like one in a prompt.
        metadata = redact_value({**self.metadata, **(extra or {})})
        if self.failures:
            metadata["fallback_from"] = self.failures
        error_type = ""
        error_message = ""
        if error is not None:
            error_type = (error.details or {}).get("provider_error", "") if isinstance(error.details, dict) else ""
            error_type = error_type or error.code or type(error).__name__
            error_message = redact_secrets(error.message)
        elif status == Request.Status.CANCELLED:
            error_type, error_message = "cancelled", "The client went away before the answer was complete."
        self.row = dict(
            id=self.id,
            created_at=self.created_at,
            application_id=self.caller.application_id,
            user_id=self.caller.user_id,
            key_id=self.caller.key_id,
            endpoint=self.endpoint,
            model=self.entry.name,
            provider=self.served_by.provider,
            resolved_model=self.served_by.litellm_model,
            messages=messages,
            response=answer,
            status=status,
            http_status=error.status if error else (499 if status == Request.Status.CANCELLED else 200),
            error_type=error_type,
            error_message=error_message,
            prompt_tokens=usage.prompt,
            completion_tokens=usage.completion,
            total_tokens=usage.total,
            cached_tokens=usage.cached,
            reasoning_tokens=usage.reasoning,
            cost_usd=cost,
            latency_ms=duration,
            ttft_ms=ttft_ms,
            streamed=self.streamed,
            cache_hit=cache_hit,
            metadata=metadata,
        )
        return Completion(
            request_id=self.id,
            content=content,
            model=self.entry.name,
            usage=usage,
            cost_usd=cost,
            duration_ms=duration,
            created_at=self.created_at,
            application_id=self.caller.application_id,
            user_id=self.caller.user_id,
        )

    def journal_entry(self) -> dict:
        row = self.row
        usage = {k: row[f"{k}_tokens"] for k in ("prompt", "completion", "total", "cached", "reasoning")}
        success = row["status"] == Request.Status.SUCCESS
        return {
            "timestamp": row["created_at"].isoformat(),
            "request_id": str(row["id"]),
            "model": row["model"],
            "duration_ms": row["latency_ms"],
            "request": {"messages": row["messages"], "metadata": row["metadata"]},
            "response": {"content": row["response"], "usage": usage},
            "error": None if success else {"type": row["error_type"], "message": row["error_message"]},
            "success": success,
            "row": {k: v for k, v in row.items() if k not in ("messages", "response", "metadata")},
        }


def request_save(call: _Call) -> None:
    """Write the call's JSON log, then its row; a row the database refuses is left to the journal."""
    journaled = False
    if settings.LLM_LOG_DIR:
        try:
            journal_write(settings.LLM_LOG_DIR, call.created_at, call.entry.name, str(call.id), call.journal_entry())
            journaled = True
        except OSError:
            logger.exception("could not write the JSON log of request %s", call.id)
    try:
        Request.objects.create(**call.row)
    except DatabaseError:
        if not journaled:
            raise
        logger.warning("request %s kept in the JSON log only; `import_logs` restores its row", call.id)


async def _save(call: _Call, admission: Admission, cost: Decimal, tokens: int) -> None:
    # Shielded: a client that goes away must not stop its own row from being written.
    async def both() -> None:
        try:
            await run_db(request_save, call)
        finally:  # a row the database refused must not keep its reservation held until it expires
            await limits_settle(admission, cost_usd=cost, tokens=tokens)

    await asyncio.shield(both())


def _max_tokens(options: dict) -> int | None:
    """The completion tokens a call may use, for its budget reservation."""
    return options.get("max_tokens") or options.get("max_completion_tokens")


def _options(options: dict | None) -> dict:
    return {k: v for k, v in (options or {}).items() if k in OPTIONS and v is not None}


def _chain(entry: ModelEntry) -> list[ModelEntry]:
    """The model and its catalog fallbacks, in the order they are tried."""
    models = catalog()
    return [entry] + [models[name] for name in entry.fallbacks if name in models and models[name].mode == entry.mode]


async def _complete(call: _Call, messages: list[dict], options: dict) -> llm.Answer:
    """The answer of the first model in the fallback chain that gives one; the last error otherwise."""
    chain = _chain(call.entry)
    for position, candidate in enumerate(chain):
        try:
            answer = await llm.complete(
                candidate, messages, options, timeout=settings.LLM_TIMEOUT_SECONDS, max_retries=settings.LLM_MAX_RETRIES
            )
        except ProviderError as error:  # retryable at another model; a 400 is not
            call.failures.append(f"{candidate.name}: {error.code}")
            if position == len(chain) - 1:
                raise
            continue
        call.served_by = candidate
        return answer
    raise AssertionError("unreachable: the chain is never empty")


async def llm_completion(
    messages: list[dict],
    *,
    model: str | None = None,
    caller: Caller = ANONYMOUS,
    endpoint: str = "python",
    options: dict | None = None,
    metadata: dict | None = None,
    cache: bool | None = None,
) -> Completion:
    """One chat completion, recorded as one Request row whatever happens at the provider.

    `cache` switches the response cache on or off for this call; by default the catalog decides.
    """
    entry = model_resolve(model)
    options = _options(options)
    admission = await limits_admit(caller=caller, entry=entry, messages=messages, max_tokens=_max_tokens(options))
    call = _Call(entry=entry, caller=caller, endpoint=endpoint, messages=messages, metadata=metadata, streamed=False)
    ttl = cache_ttl(entry, options, cache)
    key = cache_key(entry, messages, options) if ttl else ""
    hit = await cache_get(key) if ttl else None
    if hit is not None:
        usage = Usage(*hit["usage"])
        done = call.record(status=Request.Status.SUCCESS, content=hit["content"], usage=usage, cache_hit=True)
        await _save(call, admission, Decimal(0), 0)
        return Completion(**{**done.__dict__, "response": llm.response_load(hit["response"])})
    try:
        answer = await _complete(call, messages, options)
    except GatewayError as error:
        call.record(status=Request.Status.ERROR, error=error)
        await _save(call, admission, Decimal(0), 0)
        raise
    except asyncio.CancelledError:
        call.record(status=Request.Status.CANCELLED)
        await _save(call, admission, Decimal(0), 0)
        raise
    cost = cost_of(answer.usage, llm.prices_for(call.served_by))
    extra = {} if answer.usage_reported else {"usage_estimated": True}
    content = answer.content or _tool_calls_text(answer.response)
    done = call.record(status=Request.Status.SUCCESS, content=content, usage=answer.usage, cost=cost, extra=extra)
    await _save(call, admission, cost, answer.usage.total)
    if ttl:
        u = answer.usage
        stored = {
            "content": content,
            "usage": [u.prompt, u.completion, u.cached, u.reasoning],
            "response": llm.response_dump(answer.response),
        }
        await cache_put(key, stored, ttl)
    return Completion(**{**done.__dict__, "content": answer.content, "response": answer.response})


def _has_tool_call(chunk: Any) -> bool:
    choices = getattr(chunk, "choices", None)
    delta = getattr(choices[0], "delta", None) if choices else None
    return bool(delta and (getattr(delta, "tool_calls", None) or getattr(delta, "function_call", None)))


def _tool_calls_text(response: Any) -> str:
    try:
        calls = response.choices[0].message.tool_calls or []
    except (AttributeError, IndexError):
        return ""
    return "\n".join(f"{c.function.name}({c.function.arguments})" for c in calls)


async def simple_llm_call_async(
    prompt: str,
    *,
    model: str | None = None,
    caller: Caller = ANONYMOUS,
    endpoint: str = "python",
    cache: bool | None = None,
) -> Completion:
    """One prompt in, one answer out; recorded like every other call."""
    messages = [{"role": "user", "content": prompt}]
    return await llm_completion(messages, model=model, caller=caller, endpoint=endpoint, cache=cache)


async def llm_stream(
    messages: list[dict],
    *,
    model: str | None = None,
    caller: Caller = ANONYMOUS,
    endpoint: str = "python",
    options: dict | None = None,
    metadata: dict | None = None,
    request_id: uuid.UUID | None = None,
) -> AsyncIterator[Any]:
    """A streamed completion: litellm's chunks as they come, then a `StreamDone` once the row is written.

    A provider error mid-stream raises GatewayError after its row is written; a consumer that stops
    early (disconnect, cancel) leaves a cancelled row with the tokens produced so far. `request_id`
    lets a view name the row in its response headers before the first chunk.
    """
    entry = model_resolve(model)
    options = _options(options)
    options.pop("n", None)
    admission = await limits_admit(caller=caller, entry=entry, messages=messages, max_tokens=_max_tokens(options))
    return _stream(entry, admission, caller, endpoint, messages, options, metadata, request_id)


async def _open_stream(call: _Call, messages: list[dict], options: dict) -> tuple[AsyncIterator[Any], Any]:
    """The stream of the first model in the fallback chain that starts one, with its first chunk (None if empty).

    Fallbacks are tried only before the first chunk: once text has reached the client, a failure is the answer.
    """
    chain = _chain(call.entry)
    for position, candidate in enumerate(chain):
        upstream = llm.stream(
            candidate, messages, options, timeout=settings.LLM_TIMEOUT_SECONDS, max_retries=settings.LLM_MAX_RETRIES
        )
        try:
            first = await anext(upstream, None)
        except ProviderError as error:
            await upstream.aclose()
            call.failures.append(f"{candidate.name}: {error.code}")
            if position == len(chain) - 1:
                raise
            continue
        except BaseException:
            await upstream.aclose()
            raise
        call.served_by = candidate
        return upstream, first
    raise AssertionError("unreachable: the chain is never empty")


async def _stream(
    entry: ModelEntry,
    admission: Admission,
    caller: Caller,
    endpoint: str,
    messages: list[dict],
    options: dict,
    metadata: dict | None,
    request_id: uuid.UUID | None = None,
) -> AsyncIterator[Any]:
    call = _Call(
        entry=entry,
        caller=caller,
        endpoint=endpoint,
        messages=messages,
        metadata=metadata,
        streamed=True,
        request_id=request_id,
    )
    parts: list[str] = []
    usage: Usage | None = None
    ttft_ms: int | None = None
    answered = False  # whether the provider sent anything at all: text, a tool call or usage

    def finish(status: str, error: GatewayError | None = None) -> tuple[Completion, Decimal, Usage]:
        text = "".join(parts)
        final = usage
        extra = {}
        if final is None:
            final = Usage(
                prompt=llm.count_tokens(call.served_by, messages=messages),
                completion=llm.count_tokens(call.served_by, text=text) if text else 0,
            )
            extra = {"usage_estimated": True}
        cost = cost_of(final, llm.prices_for(call.served_by))
        done = call.record(
            status=status, content=text, usage=final, cost=cost, error=error, ttft_ms=ttft_ms, extra=extra
        )
        return done, cost, final

    try:
        upstream, chunk = await _open_stream(call, messages, options)
        # aclosing: a consumer that stops early closes the provider's connection now, not when collected.
        async with aclosing(upstream):
            while chunk is not None:
                reported = llm.usage_of(getattr(chunk, "usage", None))
                if reported is not None:
                    usage = reported
                text = llm.chunk_text(chunk)
                if text:
                    if ttft_ms is None:
                        ttft_ms = call.elapsed_ms()
                    parts.append(text)
                answered = answered or bool(text) or reported is not None or _has_tool_call(chunk)
                yield chunk
                chunk = await anext(upstream, None)
        if not answered:
            # A body that is not a stream (malformed) still ends in litellm's empty "stop" chunk: no answer came.
            raise ProviderError(
                "The provider's stream carried no answer: no text, tool call or usage.",
                details={"provider_error": "EmptyStream"},
            )
    except GatewayError as error:
        _, cost, final = finish(Request.Status.ERROR, error)
        await _save(call, admission, cost, final.total)
        raise
    except (asyncio.CancelledError, GeneratorExit):
        _, cost, final = finish(Request.Status.CANCELLED)
        await _save(call, admission, cost, final.total)
        raise
    done, cost, final = finish(Request.Status.SUCCESS)
    await _save(call, admission, cost, final.total)
    yield StreamDone(completion=done, ttft_ms=ttft_ms)


async def llm_embed(
    inputs: list[str],
    *,
    model: str,
    caller: Caller = ANONYMOUS,
    endpoint: str = "python",
    options: dict | None = None,
) -> tuple[Completion, Any]:
    """Embeddings for `inputs`, recorded as one row (the inputs stand in for the messages)."""
    entry = model_resolve(model, mode="embedding")
    as_messages = [{"role": "user", "content": text} for text in inputs]  # what the reservation estimates
    admission = await limits_admit(caller=caller, entry=entry, messages=as_messages, max_tokens=0)
    call = _Call(entry=entry, caller=caller, endpoint=endpoint, messages=inputs, metadata=None, streamed=False)
    opts = {k: v for k, v in (options or {}).items() if k in ("dimensions", "encoding_format", "user") and v}
    try:
        response, usage = await llm.embed(entry, inputs, opts, timeout=settings.LLM_TIMEOUT_SECONDS)
    except GatewayError as error:
        call.record(status=Request.Status.ERROR, error=error)
        await _save(call, admission, Decimal(0), 0)
        raise
    except asyncio.CancelledError:
        call.record(status=Request.Status.CANCELLED)
        await _save(call, admission, Decimal(0), 0)
        raise
    cost = cost_of(usage, llm.prices_for(entry))
    done = call.record(status=Request.Status.SUCCESS, usage=usage, cost=cost)
    await _save(call, admission, cost, usage.total)
    return done, response
