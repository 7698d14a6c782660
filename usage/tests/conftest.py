"""A small, fixed history of calls: three users, two applications, three models, over ten days."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from chat.models import Request


def make_request(**fields) -> Request:
    """One Request row as the gateway records it; any field may be given."""
    values = {
        "application_id": "acme",
        "user_id": "alice",
        "endpoint": "/api/chat",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "resolved_model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello"}],
        "response": "Echo: Hello",
        "status": "success",
        "prompt_tokens": 2,
        "completion_tokens": 3,
        "total_tokens": 5,
        "cost_usd": Decimal("0.0000021000"),
        "latency_ms": 100,
    }
    values.update(fields)
    if values["status"] != "success":
        values.setdefault("error_type", "RateLimitError")
        values.setdefault("error_message", "The provider's rate limit was reached.")
        values.setdefault("http_status", 429)
    return Request.objects.create(**values)


@pytest.fixture
def history(db) -> list[Request]:
    """About 400 rows over the last ten days and today, with odd costs that floats would get wrong."""
    rng = random.Random(7)
    now = timezone.now()
    rows = []
    for i in range(400):
        created = now - timedelta(seconds=rng.randrange(0, 10 * 86400))
        prompt, completion = rng.randrange(0, 3000), rng.randrange(0, 800)
        status = rng.choices(["success", "error", "cancelled"], weights=[90, 7, 3])[0]
        rows.append(
            make_request(
                created_at=created,
                application_id=rng.choice(["acme", "acme", "globex"]),
                user_id=rng.choice(["alice", "bob", "carol"]),
                model=rng.choice(["gpt-4o-mini", "gpt-4o", "claude-haiku-4-5"]),
                status=status,
                prompt_tokens=prompt,
                completion_tokens=completion,
                total_tokens=prompt + completion,
                cost_usd=Decimal(rng.randrange(0, 10**9)).scaleb(-10) + Decimal("0.1") * (i % 3),
                latency_ms=rng.randrange(50, 5000),
                messages=[{"role": "user", "content": f"question {i}"}],
                response=f"answer {i}",
            )
        )
    return rows
