"""The base of the async LLM views: DRF's request, parsers and renderers, without a thread per request."""

from __future__ import annotations

import inspect
from typing import Any

from adrf.views import APIView
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest
from rest_framework.authentication import CSRFCheck
from rest_framework.response import Response

from chat.auth import ANONYMOUS, bearer_token
from chat.errors import BadRequest, Forbidden, ServiceUnavailable, Unauthorized
from chat.serializers import GatewayInput
from chat.services.keys import Caller, acaller_from_key


async def acaller_for(request: HttpRequest) -> Caller:
    """The caller of an async request: a key, a signed-in person (CSRF checked), or anonymous if allowed."""
    token = bearer_token(request)
    if token is not None:
        caller = await acaller_from_key(token)
        if caller is None:
            raise Unauthorized("Invalid, revoked or expired API key.")
        return caller
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        user = await request.auser()
        if user.is_authenticated:
            reason = CSRFCheck(lambda r: None).process_view(request, None, (), {})
            if reason:
                raise Forbidden("CSRF check failed: reload the page and try again.", code="csrf_failed")
            return Caller(application_id="web", user_id=user.get_username())
    if settings.GATEWAY_ALLOW_ANONYMOUS:
        return ANONYMOUS
    raise Unauthorized("Missing API key: send 'Authorization: Bearer <gateway key>'.")


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

    def on_behalf(self, data: dict) -> Caller:
        """The caller, acting for the body's user; the body's application must be the key's."""
        application_id = data.get("application_id") or ""
        caller = self.caller
        if application_id and caller.key_id is not None and application_id != caller.application_id:
            raise Forbidden(
                f"application_id '{application_id}' does not match this key's application.",
                param="application_id",
                code="application_mismatch",
            )
        if application_id and caller.key_id is None and not caller.application_id:
            caller = Caller(**{**caller.__dict__, "application_id": application_id})
        return caller.for_user(data.get("user_id"))
