"""Django's middleware and ASGI handler, tuned so that under ASGI no request pays for threads it does not need.

Django runs each `MiddlewareMixin` middleware's `process_request` and `process_response` (and `process_view`)
through `sync_to_async(thread_sensitive=True)`: some twelve hops to a thread and back per request, plus a sync-only
middleware (WhiteNoise's) that makes Django wrap the whole chain below it in a thread. Measured on the LLM path
that was about a quarter of the gateway's own CPU time per request (docs/performance.md).

These subclasses run the same methods inline, on the loop. That is safe because these methods only read the
request and set headers or cookies, with one exception: SessionMiddleware saves a modified session to the
database, and that save still goes through a thread. Under WSGI (sync) they behave exactly as Django's own.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.core.handlers.asgi import ASGIHandler
from django.middleware import clickjacking, common, csrf, security
from whitenoise.middleware import WhiteNoiseMiddleware


class InlineMiddlewareMixin:
    """`__acall__` that calls `process_request` and `process_response` directly instead of in a thread."""

    get_response: Any

    async def __acall__(self, request: Any) -> Any:
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            response = await self.aprocess_response(request, response)
        return response

    async def aprocess_response(self, request: Any, response: Any) -> Any:
        return self.process_response(request, response)  # type: ignore[attr-defined]


class SecurityMiddleware(InlineMiddlewareMixin, security.SecurityMiddleware):
    pass


class SessionMiddleware(InlineMiddlewareMixin, sessions.SessionMiddleware):
    async def aprocess_response(self, request: Any, response: Any) -> Any:
        session = getattr(request, "session", None)
        must_save = session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)
        if must_save:  # the session is written to the database: keep that off the event loop
            return await sync_to_async(self.process_response, thread_sensitive=True)(request, response)
        return self.process_response(request, response)


class CommonMiddleware(InlineMiddlewareMixin, common.CommonMiddleware):
    pass


class CsrfViewMiddleware(InlineMiddlewareMixin, csrf.CsrfViewMiddleware):
    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)
        if iscoroutinefunction(get_response):  # Django adapts `process_view` to the chain's mode by this test
            self.process_view = self._process_view_inline  # type: ignore[method-assign]

    async def _process_view_inline(self, request: Any, callback: Any, args: Any, kwargs: Any) -> Any:
        return csrf.CsrfViewMiddleware.process_view(self, request, callback, args, kwargs)


class AuthenticationMiddleware(InlineMiddlewareMixin, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(InlineMiddlewareMixin, messages.MessageMiddleware):
    pass


class XFrameOptionsMiddleware(InlineMiddlewareMixin, clickjacking.XFrameOptionsMiddleware):
    pass


class AsyncWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise's static files, looked up exactly as WhiteNoise does, without leaving the event loop."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any = None, **kwargs: Any) -> None:
        super().__init__(get_response, **kwargs)
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self._is_async:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request: Any) -> Any:
        if self.autorefresh:
            static_file = self.find_file(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return self.serve(static_file, request)
        return await self.get_response(request)


class GatewayASGIHandler(ASGIHandler):
    """Django's ASGI handler, with the per-request thread taken from a pool instead of started anew.

    Django runs each request in its own `ThreadSensitiveContext`, whose first sync step (the request_started
    signal, `response.close()`) starts a thread, and whose exit starts a second thread to join the first:
    two thread starts per request, about 1 ms of CPU. Here each request gets a single-thread executor of its
    own from a pool, so sync code of one request still runs on one thread and requests still run side by
    side; the executor goes back to the pool when the request is done.
    """

    POOL_SIZE = 256  # executors kept for reuse per process; a busier moment starts (and ends) more

    def __init__(self) -> None:
        super().__init__()
        self._executors: list[ThreadPoolExecutor] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)  # Django refuses it in its own words
            return
        if _declared_length(scope) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            await _refuse_too_large(send)  # before Django reads (and spools) a body it would refuse anyway
            return
        executor = self._executors.pop() if self._executors else ThreadPoolExecutor(1, "request")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            if len(self._executors) < self.POOL_SIZE:
                self._executors.append(executor)
            else:
                executor.shutdown(wait=False)


def _declared_length(scope: dict) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


async def _refuse_too_large(send: Any) -> None:
    body = json.dumps(
        {
            "error": {
                "type": "invalid_request_error",
                "code": "body_too_large",
                "message": f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
                "param": "body",
            }
        }
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
