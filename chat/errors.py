"""The one error shape, `{"error": {"type", "code", "message", "param"}}`, and the exceptions behind it."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions as drf
from rest_framework.response import Response


class GatewayError(Exception):
    """An error a client sees: HTTP status, OpenAI-style type and code, the field at fault."""

    status = 400
    type = "invalid_request_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}
        self.details = details
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def body(self) -> dict:
        error = {"type": self.type, "code": self.code, "message": self.message, "param": self.param}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class BadRequest(GatewayError):
    pass


class Unauthorized(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(GatewayError):
    status = 403
    type = "permission_error"
    code = "forbidden"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"
    code = "not_found"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class BudgetExceeded(RateLimited):
    code = "budget_exceeded"


class ProviderError(GatewayError):
    status = 502
    type = "provider_error"
    code = "provider_error"


class ProviderTimeout(ProviderError):
    status = 504
    code = "provider_timeout"


class ProviderRateLimited(ProviderError):
    status = 429
    type = "rate_limit_error"
    code = "provider_rate_limited"


class ServiceUnavailable(GatewayError):
    status = 503
    type = "service_unavailable"
    code = "service_unavailable"


API_PREFIXES = ("/api/", "/llm/", "/v1/", "/health")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 handler: the one error shape on API paths, Django's page elsewhere."""
    if request.path.startswith(API_PREFIXES):
        return error_response(NotFound(f"Nothing at {request.path}."))
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler: the one error shape on API paths, Django's page elsewhere."""
    if request.path.startswith(API_PREFIXES):
        return error_response(GatewayError("The gateway failed unexpectedly.", status=500, code="internal_error"))
    return defaults.server_error(request)


def error_response(error: GatewayError) -> JsonResponse:
    response = JsonResponse(error.body(), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def validation_error(detail: Any) -> BadRequest:
    """Turn a serializer's errors into one 400 naming the first bad field and listing them all."""
    fields = _flatten(detail)
    param, messages = next(iter(fields.items())) if fields else (None, ["Invalid input."])
    message = f"{param}: {messages[0]}" if param else messages[0]
    return BadRequest(message, param=param, code="invalid_value", details=fields)


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            if key == "non_field_errors":
                name = prefix
            elif isinstance(key, int) or str(key).isdigit():
                name = f"{prefix}[{key}]"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "body": [str(item) for item in detail]} if detail else {}
        out = {}
        for index, item in enumerate(detail):
            out.update(_flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix or "body": [str(detail)]}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's exception handler, answering every error in the gateway's one shape."""
    if isinstance(exc, GatewayError):
        error = exc
    elif isinstance(exc, RequestDataTooBig):
        error = GatewayError("The request body is too large.", status=413, param="body", code="body_too_large")
    elif isinstance(exc, drf.ValidationError):
        error = validation_error(exc.detail)
    elif isinstance(exc, drf.ParseError):
        error = BadRequest(f"Malformed JSON body: {exc.detail}", param="body", code="invalid_json")
    elif isinstance(exc, drf.UnsupportedMediaType):
        error = GatewayError(str(exc.detail), status=415, code="unsupported_media_type")
    elif isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        error = Unauthorized(str(exc.detail))
    elif isinstance(exc, drf.PermissionDenied):
        error = Forbidden(str(exc.detail))
    elif isinstance(exc, (drf.NotFound, Http404)):
        error = NotFound("Not found.")
    elif isinstance(exc, drf.MethodNotAllowed):
        error = GatewayError(str(exc.detail), status=405, code="method_not_allowed")
    elif isinstance(exc, drf.Throttled):
        error = RateLimited(str(exc.detail), headers={"Retry-After": str(int(exc.wait or 1))})
    elif isinstance(exc, drf.APIException):
        error = GatewayError(str(exc.detail), status=exc.status_code, code=exc.default_code)
    else:
        return None
    return Response(error.body(), status=error.status, headers=error.headers)
