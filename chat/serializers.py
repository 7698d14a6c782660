"""Input and output shapes of the chat endpoints. Types are strict: 123 is not a string here."""

from __future__ import annotations

import json

from rest_framework import serializers

from chat.services import Completion

# Where and with which credentials the gateway connects is the operator's choice, never a caller's.
FORBIDDEN_FIELDS = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "organization",
        "custom_llm_provider",
        "litellm_params",
        "extra_headers",
        "headers",
        "aws_access_key_id",
        "aws_secret_access_key",
        "vertex_credentials",
        "azure_ad_token",
        "mock_response",
        "input_cost_per_token",
        "output_cost_per_token",
        "proxy",
        "timeout",
    }
)
MAX_METADATA_BYTES = 16 * 1024
ROLES = ("system", "developer", "user", "assistant", "tool", "function")


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):  # type: ignore[no-untyped-def]
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    def to_internal_value(self, data):  # type: ignore[no-untyped-def]
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):  # type: ignore[no-untyped-def]
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):  # type: ignore[no-untyped-def]
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class GatewayInput(serializers.Serializer):
    """Refuses connection settings in a body instead of silently ignoring them."""

    def validate(self, attrs: dict) -> dict:
        if isinstance(self.initial_data, dict):
            bad = sorted(FORBIDDEN_FIELDS & set(self.initial_data))
            if bad:
                raise serializers.ValidationError(
                    {bad[0]: ["Not allowed: the gateway decides where and with which credentials it connects."]}
                )
        return attrs


def validate_metadata(value: dict) -> dict:
    if len(json.dumps(value, default=str)) > MAX_METADATA_BYTES:
        raise serializers.ValidationError(f"Must be at most {MAX_METADATA_BYTES} bytes of JSON.")
    return value


class ApiChatInput(GatewayInput):
    query = StrictCharField(max_length=200_000)
    model = StrictCharField(max_length=100)
    application_id = StrictCharField(max_length=100, required=False, allow_blank=True)
    user_id = StrictCharField(max_length=100, required=False, allow_blank=True)


class SimpleInput(GatewayInput):
    prompt = StrictCharField(max_length=200_000)
    model = StrictCharField(max_length=100, required=False)


class MessageInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=ROLES)
    content = serializers.JSONField(required=False, allow_null=True)
    name = StrictCharField(max_length=100, required=False)
    tool_calls = serializers.ListField(child=serializers.DictField(), required=False)
    tool_call_id = StrictCharField(max_length=200, required=False)

    def validate_content(self, value):  # type: ignore[no-untyped-def]
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(p, dict) and "type" in p for p in value):
            return value
        raise serializers.ValidationError("Must be a string or a list of content parts.")

    def validate(self, attrs: dict) -> dict:
        if attrs.get("content") in (None, "") and not attrs.get("tool_calls") and attrs["role"] != "assistant":
            raise serializers.ValidationError({"content": ["This field is required."]})
        return attrs


class LlmChatInput(GatewayInput):
    messages = MessageInput(many=True, allow_empty=False, max_length=1000)
    model = StrictCharField(max_length=100, required=False)
    temperature = StrictFloatField(min_value=0, max_value=2, required=False)
    max_tokens = StrictIntegerField(min_value=1, max_value=1_000_000, required=False)
    stream = StrictBooleanField(required=False, default=False)
    metadata = serializers.DictField(required=False, validators=[validate_metadata])


def usage_body(done: Completion) -> dict:
    return {
        "prompt_tokens": done.usage.prompt,
        "completion_tokens": done.usage.completion,
        "total_tokens": done.usage.total,
    }


def api_chat_body(done: Completion) -> dict:
    """The `/api/chat` answer."""
    return {
        "request_id": str(done.request_id),
        "response": done.content,
        "metadata": {
            "response_time": round(done.duration_ms / 1000, 3),
            "tokens": done.usage.as_dict(),
            "cost_usd": float(done.cost_usd),
            "timestamp": done.created_at.isoformat(),
            "model": done.model,
            "application_id": done.application_id or None,
            "user_id": done.user_id or None,
        },
    }


def llm_body(done: Completion) -> dict:
    """The `/llm/simple` and `/llm/chat` answer."""
    return {
        "request_id": str(done.request_id),
        "content": done.content,
        "model": done.model,
        "usage": usage_body(done),
        "cost_usd": float(done.cost_usd),
        "duration_ms": done.duration_ms,
    }
