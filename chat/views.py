"""The gateway's own JSON endpoints: `/api/chat`, `/llm/simple`, `/llm/chat`, `/api/models`, `/health`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from chat import llm
from chat.api import GatewayView
from chat.catalog import catalog, default_model
from chat.errors import GatewayError
from chat.schema import LLM_ERRORS, ApiChatSchema, CatalogSchema, HealthSchema, LlmSchema, errors
from chat.serializers import ApiChatInput, LlmChatInput, SimpleInput, api_chat_body, llm_body
from chat.services import StreamDone, llm_completion, llm_stream, simple_llm_call_async
from chat.sse import DONE, sse, sse_response


class ApiChatView(GatewayView):
    @extend_schema(request=ApiChatInput, responses={200: ApiChatSchema, **LLM_ERRORS}, summary="Ask one question")
    async def post(self, request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        data = self.valid(ApiChatInput)
        done = await simple_llm_call_async(
            data["query"],
            model=data["model"],
            caller=self.on_behalf(data),
            endpoint="/api/chat",
            cache=self.cache_wanted(),
        )
        return Response(api_chat_body(done), headers={"X-Request-Id": str(done.request_id)})


class SimpleView(GatewayView):
    @extend_schema(request=SimpleInput, responses={200: LlmSchema, **LLM_ERRORS}, summary="One prompt, one answer")
    async def post(self, request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        data = self.valid(SimpleInput)
        done = await simple_llm_call_async(
            data["prompt"],
            model=data.get("model"),
            caller=self.caller,
            endpoint="/llm/simple",
            cache=self.cache_wanted(),
        )
        return Response(llm_body(done), headers={"X-Request-Id": str(done.request_id)})


class LlmChatView(GatewayView):
    @extend_schema(
        request=LlmChatInput,
        responses={
            200: OpenApiResponse(LlmSchema, description="JSON, or Server-Sent Events when stream is true"),
            **LLM_ERRORS,
        },
        summary="A conversation, whole or streamed",
    )
    async def post(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        data = self.valid(LlmChatInput)
        messages = [dict(m) for m in data["messages"]]
        options = {k: data[k] for k in ("temperature", "max_tokens") if k in data}
        call = dict(
            model=data.get("model"),
            caller=self.caller,
            endpoint="/llm/chat",
            options=options,
            metadata=data.get("metadata"),
        )
        if not data["stream"]:
            done = await llm_completion(messages, **call, cache=self.cache_wanted())
            return Response(llm_body(done), headers={"X-Request-Id": str(done.request_id)})
        request_id = uuid.uuid4()  # named before the first byte, so a stopped stream can still be looked up
        response = sse_response(llm_chat_events(await llm_stream(messages, request_id=request_id, **call)))
        response["X-Request-Id"] = str(request_id)
        return response


async def llm_chat_events(chunks: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    """`/llm/chat` stream events: `delta`s, then `done` with the recorded figures (or `error`), then [DONE]."""
    try:
        async for item in chunks:
            if isinstance(item, StreamDone):
                done = item.completion
                yield sse({"type": "done", **llm_body(done), "ttft_ms": item.ttft_ms})
            else:
                text = llm.chunk_text(item)
                if text:
                    yield sse({"type": "delta", "content": text})
    except GatewayError as error:
        yield sse({"type": "error", **error.body()})
    yield DONE


class ModelsView(GatewayView):
    """The catalog grouped by provider, with prices per million tokens."""

    @extend_schema(responses={200: CatalogSchema, **errors(401)}, summary="The model catalog")
    async def get(self, request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        providers: dict[str, list[dict]] = {}
        for entry in catalog().values():
            prices = llm.prices_for(entry)
            providers.setdefault(entry.provider, []).append(
                {
                    "name": entry.name,
                    "mode": entry.mode,
                    "input_cost_per_million": prices.input_per_million() if prices else None,
                    "output_cost_per_million": prices.output_per_million() if prices else None,
                }
            )
        body = [{"provider": p, "models": sorted(ms, key=lambda m: m["name"])} for p, ms in sorted(providers.items())]
        return Response({"default": default_model(), "providers": body})


class HealthView(APIView):
    """Liveness and readiness: the database and the cache answer. Needs no key."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(responses={200: HealthSchema, 503: HealthSchema}, summary="Database and cache status", auth=[])
    def get(self, request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        checks = {
            "database": _check(lambda: connection.cursor().execute("SELECT 1")),
            "cache": _check(lambda: cache.set("health", 1, 5)),
        }
        healthy = all(v == "ok" for v in checks.values())
        body = {"status": "ok" if healthy else "unavailable", **checks, "version": settings.VERSION}
        return Response(body, status=200 if healthy else 503)


def _check(probe) -> str:  # type: ignore[no-untyped-def]
    try:
        probe()
    except Exception:  # noqa: BLE001 - any failure means the dependency is down
        return "error"
    return "ok"
