"""The browser pages of the write side: sign in and out, and the `/` chat page."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse, reverse_lazy

LOGIN_URL = reverse_lazy("login")
NIL_ID = str(uuid.UUID(int=0))

# Pages load only their own files: a script or style from an answer, or from anywhere else, is refused.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A browser page: the Content-Security-Policy header on every answer."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

    return wrapper


def admin_request_url(request: HttpRequest, request_id: str = NIL_ID) -> str | None:
    """The admin page of one Request row, for staff allowed to see it there (None for anyone else)."""
    if not (request.user.is_staff and request.user.has_perm("chat.view_request")):
        return None
    try:
        return reverse("admin:chat_request_change", args=[request_id])
    except NoReverseMatch:
        return None


@page
@login_required(login_url=LOGIN_URL)
def chat_page(request: HttpRequest) -> HttpResponse:
    """The chat: a conversation kept in the page, answers streamed from `/llm/chat`."""
    config = {
        "user": request.user.get_username(),
        "csrf_token": get_token(request),
        "csrf_cookie": settings.CSRF_COOKIE_NAME,
        "chat_url": reverse("llm-chat"),
        "models_url": reverse("api-models"),
        "health_url": reverse("health"),
        "login_url": f"{reverse('login')}?next={reverse('chat-page')}",
        "admin_request_url": admin_request_url(request),
        "nil_id": NIL_ID,
    }
    return render(request, "chat/index.html", {"page": "chat", "config": config})


login_page = page(
    auth_views.LoginView.as_view(template_name="registration/login.html", redirect_authenticated_user=True)
)
logout_page = page(auth_views.LogoutView.as_view(next_page=LOGIN_URL))
