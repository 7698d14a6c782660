"""OpenAI's request and response shapes for `/v1`: input serializers and cheap builders of the answer bodies.

The builders read litellm's response objects attribute by attribute and let the C JSON encoder do the
rest: a pydantic dump per streamed chunk would cost more than the gateway's whole per-chunk budget.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from chat.pricing import Usage
from chat.serializers import (
    GatewayInput,
    MessageInput,
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    validate_metadata,
)

DONE = b"data: [DONE]\n\n"
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class SharedFieldsMixin:
    """Fields built once per class, not deep-copied for every request (a third of a millisecond each time).

    Safe because these serializers only validate: their fields keep no per-request state and read no context.
    """

    @property
    def fields(self):  # type: ignore[no-untyped-def]
        cls = type(self)
        shared = cls.__dict__.get("_shared_fields")
        if shared is None:
            shared = serializers.Serializer.fields.func(self)  # DRF's own build, bound once
            cls._shared_fields = shared
        return shared


class StopField(serializers.Field):
    """`stop`: one string or a list of at most four."""

    default_error_messages = {"invalid": "Must be a string or a list of at most 4 strings."}

    def to_internal_value(self, data: Any) -> str | list[str]:
        if isinstance(data, str):
            return data
        if isinstance(data, list) and len(data) <= 4 and all(isinstance(s, str) for s in data):
            return data
        self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return value


class ToolChoiceField(serializers.Field):
    """`tool_choice`: none, auto, required, or an object naming a tool."""

    default_error_messages = {"invalid": "Must be 'none', 'auto', 'required' or an object naming a tool."}

    def to_internal_value(self, data: Any) -> str | dict:
        if data in ("none", "auto", "required") or isinstance(data, dict):
            return data
        self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return value


class StreamOptionsInput(serializers.Serializer):
    include_usage = StrictBooleanField(required=False, default=False)


def validate_response_format(value: dict) -> dict:
    if value.get("type") not in ("text", "json_object", "json_schema"):
        raise serializers.ValidationError("type must be 'text', 'json_object' or 'json_schema'.")
    return value


def validate_tools(value: list) -> list:
    if not all(isinstance(tool.get("type"), str) for tool in value):
        raise serializers.ValidationError("Every tool needs a type.")
    return value


class ChatCompletionsInput(SharedFieldsMixin, GatewayInput):
    """The Chat Completions request; fields a provider takes are passed on, `metadata` is only recorded."""

    model = StrictCharField(max_length=100)
    messages = MessageInput(many=True, allow_empty=False, max_length=1000)
    temperature = StrictFloatField(min_value=0, max_value=2, required=False, allow_null=True)
    top_p = StrictFloatField(min_value=0, max_value=1, required=False, allow_null=True)
    max_tokens = StrictIntegerField(min_value=1, max_value=1_000_000, required=False, allow_null=True)
    max_completion_tokens = StrictIntegerField(min_value=1, max_value=1_000_000, required=False, allow_null=True)
    stop = StopField(required=False, allow_null=True)
    n = StrictIntegerField(min_value=1, max_value=128, required=False, allow_null=True)
    presence_penalty = StrictFloatField(min_value=-2, max_value=2, required=False, allow_null=True)
    frequency_penalty = StrictFloatField(min_value=-2, max_value=2, required=False, allow_null=True)
    logit_bias = serializers.DictField(child=StrictFloatField(min_value=-100, max_value=100), required=False)
    logprobs = StrictBooleanField(required=False, allow_null=True)
    top_logprobs = StrictIntegerField(min_value=0, max_value=20, required=False, allow_null=True)
    seed = StrictIntegerField(required=False, allow_null=True)
    tools = serializers.ListField(
        child=serializers.DictField(), required=False, max_length=128, validators=[validate_tools]
    )
    tool_choice = ToolChoiceField(required=False, allow_null=True)
    parallel_tool_calls = StrictBooleanField(required=False, allow_null=True)
    response_format = serializers.DictField(required=False, validators=[validate_response_format])
    reasoning_effort = serializers.ChoiceField(
        choices=("minimal", "low", "medium", "high"), required=False, allow_null=True
    )
    user = StrictCharField(max_length=100, required=False, allow_blank=True)
    metadata = serializers.DictField(required=False, validators=[validate_metadata])
    stream = StrictBooleanField(required=False, default=False)
    stream_options = StreamOptionsInput(required=False, allow_null=True)

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        if attrs.get("stream") and (attrs.get("n") or 1) > 1:
            raise serializers.ValidationError({"n": ["Only n=1 can be streamed."]})
        if attrs.get("stream_options") and not attrs.get("stream"):
            raise serializers.ValidationError({"stream_options": ["Only allowed when stream is true."]})
        return attrs


class EmbeddingsInput(SharedFieldsMixin, GatewayInput):
    model = StrictCharField(max_length=100)
    input = serializers.JSONField()
    encoding_format = serializers.ChoiceField(choices=("float", "base64"), required=False)
    dimensions = StrictIntegerField(min_value=1, max_value=100_000, required=False)
    user = StrictCharField(max_length=100, required=False, allow_blank=True)

    def validate_input(self, value: Any) -> list[str]:
        inputs = [value] if isinstance(value, str) else value
        if not isinstance(inputs, list) or not inputs or not all(isinstance(s, str) and s for s in inputs):
            raise serializers.ValidationError("Must be a non-empty string or a list of non-empty strings.")
        if len(inputs) > 2048:
            raise serializers.ValidationError("At most 2048 inputs per request.")
        return inputs


# --- Answers ----------------------------------------------------------------------------------------------


def usage_body(usage: Usage) -> dict:
    return {
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.completion,
        "total_tokens": usage.total,
        "prompt_tokens_details": {"cached_tokens": usage.cached},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    }


def _dump(value: Any) -> Any:
    """A pydantic object (or a list of them) as plain JSON data, None left alone."""
    if value is None or isinstance(value, (str, int, float, bool, dict)):
        return value
    if isinstance(value, list):
        return [_dump(v) for v in value]
    dump = getattr(value, "model_dump", None)
    return dump(exclude_none=True) if dump else value


def _message_body(message: Any) -> dict:
    body: dict = {"role": getattr(message, "role", None) or "assistant", "content": getattr(message, "content", None)}
    for name in ("tool_calls", "function_call", "reasoning_content", "annotations", "audio"):
        value = getattr(message, name, None)
        if value:
            body[name] = _dump(value)
    body.setdefault("refusal", None)
    return body


def completion_body(response: Any, usage: Usage) -> dict:
    """A Chat Completions answer from litellm's ModelResponse, with the usage the gateway recorded."""
    choices = [
        {
            "index": getattr(choice, "index", i),
            "message": _message_body(choice.message),
            "logprobs": _dump(getattr(choice, "logprobs", None)),
            "finish_reason": getattr(choice, "finish_reason", None) or "stop",
        }
        for i, choice in enumerate(response.choices or [])
    ]
    return {
        "id": response.id,
        "object": "chat.completion",
        "created": response.created,
        "model": response.model,
        "system_fingerprint": getattr(response, "system_fingerprint", None),
        "choices": choices,
        "usage": usage_body(usage),
    }


class ChunkWriter:
    """Turns litellm's stream chunks into OpenAI's `chat.completion.chunk` events, one SSE frame each."""

    def __init__(self) -> None:
        self.id = ""
        self.created = 0
        self.model = ""

    def event(self, chunk: Any) -> bytes | None:
        """The frame for `chunk`, or None when it carries nothing but usage (sent separately, if asked for)."""
        self.id = chunk.id or self.id
        self.created = chunk.created or self.created
        self.model = chunk.model or self.model
        choices = []
        for choice in chunk.choices or ():
            delta = choice.delta
            body: dict = {}
            if delta is not None:
                role = delta.role
                if role:
                    body["role"] = role
                content = delta.content
                if content is not None:
                    body["content"] = content
                for name in ("tool_calls", "function_call", "reasoning_content"):
                    value = getattr(delta, name, None)
                    if value:
                        body[name] = _dump(value)
            finish = choice.finish_reason
            if not body and finish is None:
                continue  # litellm's empty companion of a usage chunk
            logprobs = getattr(choice, "logprobs", None)
            choices.append(
                {
                    "index": choice.index,
                    "delta": body,
                    "logprobs": _dump(logprobs) if logprobs is not None else None,
                    "finish_reason": finish,
                }
            )
        if not choices:
            return None
        return self._frame(choices)

    def usage_event(self, usage: Usage) -> bytes:
        """The final chunk `stream_options.include_usage` asks for: no choices, the whole call's usage."""
        return self._frame([], usage_body(usage))

    def _frame(self, choices: list, usage: dict | None = None) -> bytes:
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if usage is not None:
            body["usage"] = usage
        return b"data: " + _dumps(body).encode() + b"\n\n"


def error_event(body: dict) -> bytes:
    return b"data: " + _dumps(body).encode() + b"\n\n"


def json_bytes(body: Any) -> bytes:
    return _dumps(body).encode()
