"""The base of the async LLM views: DRF's request, parsers and renderers, without a thread per request."""

from __future__ import annotations

import inspect
from typing import Any

from adrf.views import APIView
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables
from rest_framework.authentication import CSRFCheck
from rest_framework.response import Response

from chat.auth import ANONYMOUS, WEB_APPLICATION, bearer_token, unauthorized
from chat.errors import BadRequest, Forbidden, ServiceUnavailable
from chat.serializers import GatewayInput
from chat.services.keys import Caller, acaller_from_key


@sensitive_variables("token")
async def acaller_for(request: HttpRequest) -> Caller:
    """The caller of an async request: a key, a signed-in person (CSRF checked), or anonymous if allowed."""
    token = bearer_token(request)
    if token is not None:
        caller = await acaller_from_key(token)
        if caller is None:
            raise unauthorized("Invalid, revoked or expired API key.")
        return caller
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        user = await request.auser()
        if user.is_authenticated:
            reason = CSRFCheck(lambda r: None).process_view(request, None, (), {})
            if reason:
                raise Forbidden("CSRF check failed: reload the page and try again.", code="csrf_failed")
            return Caller(application_id=WEB_APPLICATION, user_id=user.get_username())
    if settings.GATEWAY_ALLOW_ANONYMOUS:
        return ANONYMOUS
    raise unauthorized("Missing API key: send 'Authorization: Bearer <gateway key>'.")


class GatewayView(APIView):
    """An async DRF view: authenticates the caller, then awaits the handler; errors in the one shape."""

    authentication_classes: list = []
    permission_classes: list = []
    caller: Caller

    async def async_dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Response:
        self.args, self.kwargs = args, kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            method = request.method.lower()
            handler = getattr(self, method, None) if method in self.http_method_names else None
            if handler is None:
                handler = self.http_method_not_allowed
            elif method != "options":
                self.caller = await acaller_for(request._request)
            response = handler(request, *args, **kwargs)
            if inspect.isawaitable(response):
                response = await response
        except DatabaseError:
            response = self.handle_exception(ServiceUnavailable("The database is unavailable; try again shortly."))
        except Exception as exc:  # noqa: BLE001 - DRF's handler turns known errors into answers, re-raises others
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response

    def valid(self, serializer_class: type[GatewayInput]) -> dict:
        """The request body validated by `serializer_class`, or a 400 naming the bad field."""
        data = self.request.data
        if not isinstance(data, dict):
            raise BadRequest("The body must be a JSON object.", param="body", code="invalid_json")
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def cache_wanted(self) -> bool | None:
        """The caller's wish for the response cache: `X-Gateway-Cache: on|off`, or `Cache-Control: no-cache`."""
        header = self.request.headers.get("X-Gateway-Cache", "").lower()
        if header in ("on", "true", "1"):
            return True
        if header in ("off", "false", "0") or "no-cache" in self.request.headers.get("Cache-Control", ""):
            return False
        return None

    def on_behalf(self, data: dict) -> Caller:
        """The caller acting for the body's user; the body's application (and a pinned user) must be the key's."""
        application_id = data.get("application_id") or ""
        user_id = data.get("user_id") or ""
        caller = self.caller
        if application_id and caller.application_id and application_id != caller.application_id:
            whose = "this key's" if caller.key_id is not None else "the signed-in page's"
            raise Forbidden(
                f"application_id '{application_id}' does not match {whose} application '{caller.application_id}'.",
                param="application_id",
                code="application_mismatch",
            )
        if user_id and caller.user_pinned and user_id != caller.user_id:
            raise Forbidden(
                f"user_id '{user_id}' does not match the user this key is pinned to.",
                param="user_id",
                code="user_mismatch",
            )
        if application_id and not caller.application_id:
            caller = Caller(**{**caller.__dict__, "application_id": application_id})  # anonymous use only
        return caller.for_user(user_id)
