"""Who is calling: a gateway key in `Authorization: Bearer`, or a signed-in browser session."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, permissions

from chat.errors import Unauthorized
from chat.redact import redact_secrets
from chat.services.keys import Caller, caller_from_key

ANONYMOUS = Caller()
WEB_APPLICATION = "web"  # the application of calls from signed-in browser pages


def unauthorized(message: str) -> Unauthorized:
    """A 401 that tells clients which scheme to use, as HTTP asks."""
    return Unauthorized(message, headers={"WWW-Authenticate": 'Bearer realm="gateway"'})


# Error pages and reports of a failure in these functions show "****" for these local variables.
@sensitive_variables("header", "token")
def bearer_token(request: HttpRequest) -> str | None:
    """The token of an `Authorization: Bearer` header, None when there is no such header."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        # The header is never echoed back: it may be a secret sent to the wrong place.
        raise unauthorized("The Authorization header must be 'Bearer <gateway key>'.")
    return token.strip()


@sensitive_variables("token")
def caller_for(request: HttpRequest) -> Caller:
    """The caller of a request, or Unauthorized. Uses the ORM: call from a thread."""
    token = bearer_token(request)
    if token is not None:
        caller = caller_from_key(token)
        if caller is None:
            raise unauthorized("Invalid, revoked or expired API key.")
        return caller
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Caller(application_id=WEB_APPLICATION, user_id=user.get_username())
    if settings.GATEWAY_ALLOW_ANONYMOUS:
        return ANONYMOUS
    raise unauthorized("Missing API key: send 'Authorization: Bearer <gateway key>'.")


class KeyAuthentication(authentication.BaseAuthentication):
    """DRF authentication for the read endpoints; `request.auth` is the Caller."""

    @sensitive_variables("token")
    def authenticate(self, request):  # type: ignore[no-untyped-def]
        token = bearer_token(request._request)
        if token is None:
            return None
        caller = caller_from_key(token)
        if caller is None:
            raise unauthorized("Invalid, revoked or expired API key.")
        return (None, caller)

    def authenticate_header(self, request) -> str:  # type: ignore[no-untyped-def]
        return 'Bearer realm="gateway"'


class SessionAuthentication(authentication.SessionAuthentication):
    """A signed-in person, acting as themselves through the `web` application."""

    def authenticate(self, request):  # type: ignore[no-untyped-def]
        result = super().authenticate(request)
        if result is None:
            return None
        user, _ = result
        return (user, Caller(application_id=WEB_APPLICATION, user_id=user.get_username()))


class KeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """The OpenAPI schema's name for a gateway key: the `gatewayKey` bearer scheme."""

    target_class = KeyAuthentication
    name = "gatewayKey"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {"type": "http", "scheme": "bearer"}


class SessionAuthenticationScheme(OpenApiAuthenticationExtension):
    """The OpenAPI schema's name for a signed-in browser session."""

    target_class = SessionAuthentication
    name = "session"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}


class IsCaller(permissions.BasePermission):
    """A key, a signed-in person, or anonymous use switched on by the operator."""

    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        if request.auth is not None:
            return True
        if settings.GATEWAY_ALLOW_ANONYMOUS:
            request.auth = ANONYMOUS
            return True
        raise unauthorized("Missing API key: send 'Authorization: Bearer <gateway key>'.")


URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]*:)[^@\s]+@")


def _masked(text: str) -> str:
    return URL_PASSWORD.sub(r"\1********@", redact_secrets(text))


class _Shown:
    """A variable as an error page shows it, with its secrets masked."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class SecretSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """Error pages and reports mask keys, Authorization headers and URL passwords, with DEBUG on as well."""

    def is_active(self, request: HttpRequest | None) -> bool:
        # Django shows every variable when DEBUG is on; a key on a developer's screen has leaked all the same.
        return True

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        value = super().cleanse_setting(key, value)
        return _masked(value) if isinstance(value, str) else value

    def cleanse_special_types(self, request: HttpRequest | None, value: Any) -> Any:
        value = super().cleanse_special_types(request, value)
        if isinstance(value, str):
            return _masked(value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        try:
            text = repr(value)
        except Exception:  # noqa: BLE001 - the page shows what it can of a value whose repr fails
            return value
        masked = _masked(text)
        return value if masked == text else _Shown(masked)
