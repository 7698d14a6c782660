"""OpenAPI descriptions of the gateway's answers, for /api/schema/ and the docs page."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorBody(serializers.Serializer):
    type = serializers.CharField()
    code = serializers.CharField(allow_null=True)
    message = serializers.CharField()
    param = serializers.CharField(allow_null=True)
    details = serializers.JSONField(required=False)


class ErrorSchema(serializers.Serializer):
    error = ErrorBody()


class TokensSchema(serializers.Serializer):
    prompt = serializers.IntegerField()
    completion = serializers.IntegerField()
    total = serializers.IntegerField()


class ApiChatMetadataSchema(serializers.Serializer):
    response_time = serializers.FloatField(help_text="Seconds.")
    tokens = TokensSchema()
    cost_usd = serializers.FloatField()
    timestamp = serializers.DateTimeField()
    model = serializers.CharField()
    application_id = serializers.CharField(allow_null=True)
    user_id = serializers.CharField(allow_null=True)


class ApiChatSchema(serializers.Serializer):
    request_id = serializers.UUIDField()
    response = serializers.CharField(allow_blank=True)
    metadata = ApiChatMetadataSchema()


class UsageSchema(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class LlmSchema(serializers.Serializer):
    request_id = serializers.UUIDField()
    content = serializers.CharField(allow_blank=True)
    model = serializers.CharField()
    usage = UsageSchema()
    cost_usd = serializers.FloatField()
    duration_ms = serializers.IntegerField()


class CatalogModelSchema(serializers.Serializer):
    name = serializers.CharField()
    mode = serializers.ChoiceField(choices=["chat", "embedding"])
    input_cost_per_million = serializers.FloatField(allow_null=True)
    output_cost_per_million = serializers.FloatField(allow_null=True)


class CatalogProviderSchema(serializers.Serializer):
    provider = serializers.CharField()
    models = CatalogModelSchema(many=True)


class CatalogSchema(serializers.Serializer):
    default = serializers.CharField(allow_null=True)
    providers = CatalogProviderSchema(many=True)


class HealthSchema(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "unavailable"])
    database = serializers.CharField(help_text="ok or error")
    cache = serializers.CharField(help_text="ok or error")
    version = serializers.CharField()


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error answers an endpoint may give, all in the one error shape."""
    return {status: OpenApiResponse(ErrorSchema) for status in statuses}


LLM_ERRORS = errors(400, 401, 403, 413, 429, 502, 503, 504)
