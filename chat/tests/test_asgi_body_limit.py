from __future__ import annotations

import pytest

from gateway.asgi import application


async def test_a_body_declared_too_large_is_refused_before_it_is_read(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    messages: list[dict] = []
    read = 0

    async def receive() -> dict:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/chat",
        "raw_path": b"/api/chat",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"300000000")],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5000),
        "scheme": "http",
        "http_version": "1.1",
        "asgi": {"version": "3.0"},
    }
    await application(scope, receive, send)

    assert messages[0]["status"] == 413
    assert b"body_too_large" in messages[1]["body"]
    assert read == 0


@pytest.mark.django_db
def test_a_body_within_the_limit_goes_on_to_the_view(api):
    response = api.post("/api/chat", data="{}", content_type="application/json")

    assert response.status_code == 400  # the view's own answer: fields missing
