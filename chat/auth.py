"""Who is calling: a gateway key in `Authorization: Bearer`, or a signed-in browser session."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables
from rest_framework import authentication, permissions

from chat.errors import Unauthorized
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


class IsCaller(permissions.BasePermission):
    """A key, a signed-in person, or anonymous use switched on by the operator."""

    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        if request.auth is not None:
            return True
        if settings.GATEWAY_ALLOW_ANONYMOUS:
            request.auth = ANONYMOUS
            return True
        raise unauthorized("Missing API key: send 'Authorization: Bearer <gateway key>'.")
