"""The OpenAI-compatible API: `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`.

Any OpenAI client works with `base_url=<gateway>/v1` and a gateway key as its API key; errors come in
OpenAI's shape and status codes, so the SDK raises its own exception types.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema

from chat.api import GatewayView
from chat.catalog import catalog
from chat.errors import GatewayError, NotFound
from chat.openai_shapes import (
    DONE,
    ChatCompletionsInput,
    ChunkWriter,
    EmbeddingsInput,
    completion_body,
    error_event,
    json_bytes,
)
from chat.schema import LLM_ERRORS, errors
from chat.services import StreamDone, llm_completion, llm_embed, llm_stream
from chat.services.completion import OPTIONS
from chat.sse import sse_response


def json_response(body: Any, request_id: uuid.UUID | None = None) -> HttpResponse:
    response = HttpResponse(json_bytes(body), content_type="application/json")
    if request_id is not None:
        response["X-Request-Id"] = str(request_id)
    return response


class ChatCompletionsView(GatewayView):
    @extend_schema(
        request=ChatCompletionsInput,
        responses={200: OpenApiResponse(description="OpenAI's chat.completion, or its chunks as SSE"), **LLM_ERRORS},
        summary="OpenAI Chat Completions",
    )
    async def post(self, request, *args, **kwargs) -> HttpResponse:  # type: ignore[no-untyped-def]
        data = self.valid(ChatCompletionsInput)
        messages = [dict(m) for m in data["messages"]]
        options = {k: v for k, v in data.items() if k in OPTIONS}  # the services drop None values
        call = dict(
            model=data["model"],
            caller=self.caller.for_user(data.get("user")),
            endpoint="/v1/chat/completions",
            options=options,
            metadata=data.get("metadata"),
        )
        if not data["stream"]:
            done = await llm_completion(messages, **call, cache=self.cache_wanted())
            return json_response(completion_body(done.response, done.usage), done.request_id)
        request_id = uuid.uuid4()
        chunks = await llm_stream(messages, request_id=request_id, **call)
        # The first chunk is awaited here so that a provider refusing the call is an HTTP error, not a 200.
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = None
        include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
        response = sse_response(completion_events(first, chunks, include_usage=include_usage))
        response["X-Request-Id"] = str(request_id)
        return response


async def completion_events(first: Any, chunks: AsyncIterator[Any], *, include_usage: bool) -> AsyncIterator[bytes]:
    """OpenAI's stream: one `chat.completion.chunk` per chunk, the usage chunk if asked for, then [DONE].

    The provider is always asked for usage (the row needs it); its usage chunk reaches the client only
    when `stream_options.include_usage` is set. An error mid-stream is sent as an error event, then the
    stream ends without [DONE].
    """
    writer = ChunkWriter()
    async with aclosing(chunks):
        item = first
        try:
            while item is not None:
                if isinstance(item, StreamDone):
                    if include_usage:
                        yield writer.usage_event(item.completion.usage)
                else:
                    frame = writer.event(item)
                    if frame is not None:
                        yield frame
                item = await anext(chunks, None)
        except GatewayError as error:
            yield error_event(error.body())
            return
    yield DONE


class EmbeddingsView(GatewayView):
    @extend_schema(
        request=EmbeddingsInput,
        responses={200: OpenApiResponse(description="OpenAI's embedding list"), **LLM_ERRORS},
        summary="OpenAI Embeddings",
    )
    async def post(self, request, *args, **kwargs) -> HttpResponse:  # type: ignore[no-untyped-def]
        data = self.valid(EmbeddingsInput)
        options = {k: data[k] for k in ("encoding_format", "dimensions", "user") if data.get(k)}
        done, response = await llm_embed(
            data["input"],
            model=data["model"],
            caller=self.caller.for_user(data.get("user")),
            endpoint="/v1/embeddings",
            options=options,
        )
        items = [_embedding(item, i) for i, item in enumerate(getattr(response, "data", None) or [])]
        body = {
            "object": "list",
            "data": items,
            "model": getattr(response, "model", None) or done.model,
            "usage": {"prompt_tokens": done.usage.prompt, "total_tokens": done.usage.total},
        }
        return json_response(body, done.request_id)


def _embedding(item: Any, index: int) -> dict:
    get = item.get if isinstance(item, dict) else lambda k, d=None: getattr(item, k, d)
    return {"object": "embedding", "index": get("index", index), "embedding": get("embedding")}


def _model_body(name: str) -> dict:
    return {"id": name, "object": "model", "created": 0, "owned_by": catalog()[name].provider}


class ModelListView(GatewayView):
    @extend_schema(
        operation_id="v1_models_list",
        responses={200: OpenApiResponse(description="OpenAI's model list"), **errors(401)},
    )
    async def get(self, request, *args, **kwargs) -> HttpResponse:  # type: ignore[no-untyped-def]
        return json_response({"object": "list", "data": [_model_body(name) for name in sorted(catalog())]})


class ModelDetailView(GatewayView):
    @extend_schema(responses={200: OpenApiResponse(description="One OpenAI model"), **errors(401, 404)})
    async def get(self, request, *args, model: str, **kwargs) -> HttpResponse:  # type: ignore[no-untyped-def]
        if model not in catalog():
            raise NotFound(f"The model '{model}' does not exist.", param="model", code="model_not_found")
        return json_response(_model_body(model))
