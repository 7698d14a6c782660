"""Server-Sent Events framing for streamed answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse

DONE = b"data: [DONE]\n\n"


def sse(data: Any) -> bytes:
    return b"data: " + json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":")).encode() + b"\n\n"


def sse_response(events: AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # proxies must pass each event on at once
    return response
