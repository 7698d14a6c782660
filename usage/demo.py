"""Synthetic Request rows for demos and benchmarks: users, applications and models over months.

Traffic grows over the period, is lower at weekends and at night, and a few heavy users make
most of it (a Zipf curve). Each user works mostly in one application; each application
prefers a few models. About 3% of calls fail and 0.5% are cancelled. Costs come from the same
pricing code as real calls, at list prices per million tokens.
"""

from __future__ import annotations

import bisect
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from chat.pricing import Prices, Usage, cost_of

# name: (provider, litellm model, input USD / 1M, output USD / 1M, ms per output token, overhead ms)
MODELS: dict[str, tuple[str, str, str, str, float, int]] = {
    "gpt-4o-mini": ("openai", "gpt-4o-mini", "0.15", "0.60", 9.0, 350),
    "gpt-4o": ("openai", "gpt-4o", "2.50", "10.00", 18.0, 450),
    "gpt-4.1-mini": ("openai", "gpt-4.1-mini", "0.40", "1.60", 10.0, 380),
    "claude-haiku-4-5": ("anthropic", "anthropic/claude-haiku-4-5", "1.00", "5.00", 8.0, 500),
    "claude-sonnet-4-5": ("anthropic", "anthropic/claude-sonnet-4-5", "3.00", "15.00", 16.0, 700),
    "gemini-2.5-flash": ("gemini", "gemini/gemini-2.5-flash", "0.30", "2.50", 6.0, 420),
    "gemini-2.5-pro": ("gemini", "gemini/gemini-2.5-pro", "1.25", "10.00", 20.0, 900),
    "text-embedding-3-small": ("openai", "text-embedding-3-small", "0.02", "0", 0.0, 120),
}
# application: (share of users, endpoint, model weights)
APPLICATIONS: dict[str, tuple[float, str, dict[str, float]]] = {
    "support-bot": (0.25, "/api/chat", {"gpt-4o-mini": 6, "claude-haiku-4-5": 2, "gpt-4o": 1}),
    "docs-search": (0.15, "/v1/embeddings", {"text-embedding-3-small": 5, "gpt-4o-mini": 2}),
    "sales-copilot": (0.12, "/v1/chat/completions", {"gpt-4o": 3, "claude-sonnet-4-5": 2, "gpt-4.1-mini": 2}),
    "code-review": (0.10, "/v1/chat/completions", {"claude-sonnet-4-5": 4, "gemini-2.5-pro": 1, "gpt-4o": 1}),
    "mobile-app": (0.18, "/llm/chat", {"gemini-2.5-flash": 5, "gpt-4o-mini": 3}),
    "analytics": (0.08, "/llm/simple", {"gemini-2.5-pro": 2, "gpt-4.1-mini": 3, "gemini-2.5-flash": 2}),
    "web": (0.12, "/llm/chat", {"gpt-4o-mini": 4, "claude-haiku-4-5": 2, "gemini-2.5-flash": 2, "gpt-4o": 1}),
}
PROMPTS = [
    "Summarise this support ticket in two sentences.",
    "Translate the following paragraph into French.",
    "What is our refund policy for annual plans?",
    "Write a polite reply declining the meeting.",
    "Explain this stack trace and suggest a fix.",
    "Draft a product description for a steel water bottle.",
    "Classify the sentiment of this review: 'Arrived late, works fine.'",
    "List three follow-up questions for this sales call.",
    "Review this pull request diff for bugs.",
    "Turn these notes into a bulleted meeting summary.",
    "Extract the invoice number and total from this text.",
    "Suggest a subject line for the newsletter.",
]
ANSWERS = [
    "Here is a short summary of the request.",
    "Sure — below is the translated paragraph.",
    "Annual plans can be refunded within 30 days of purchase.",
    "Thank you for the invitation; unfortunately I cannot attend.",
    "The error comes from a missing key; check the configuration.",
    "A double-walled steel bottle that keeps drinks cold for 24 hours.",
    "Sentiment: neutral to slightly negative.",
    "1. What is the timeline? 2. Who decides? 3. What is the budget?",
]
# error type, HTTP status, message, weight
ERRORS = [
    ("RateLimitError", 429, "The provider's rate limit was reached.", 5),
    ("Timeout", 504, "The provider did not answer in time.", 2),
    ("InternalServerError", 502, "The provider answered 500.", 3),
]
DEMO_METADATA = json.dumps({"demo": True})
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 11, 11, 9, 10, 11, 11, 10, 8, 6, 4, 3, 2, 2, 1]


@dataclass(frozen=True)
class DemoPlan:
    rows: int
    start: datetime
    end: datetime
    users: int = 500
    seed: int = 42


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _days(plan: DemoPlan) -> list[tuple[datetime, int]]:
    """Each day of the period with its number of rows: growing traffic, quieter weekends, summing to `rows`."""
    first = plan.start.replace(hour=0, minute=0, second=0, microsecond=0)
    count = max(1, math.ceil((plan.end - first).total_seconds() / 86400))
    days = [first + timedelta(days=i) for i in range(count)]
    weights = [(0.5 + i / count) * (0.35 if d.weekday() >= 5 else 1.0) for i, d in enumerate(days)]
    total = sum(weights)
    exact = [plan.rows * w / total for w in weights]
    counts = [int(x) for x in exact]
    # Largest remainders get the rows left over, so the counts add up exactly.
    for i in sorted(range(count), key=lambda i: exact[i] - counts[i], reverse=True)[: plan.rows - sum(counts)]:
        counts[i] += 1
    return list(zip(days, counts, strict=True))


def demo_rows(plan: DemoPlan, *, sqlite: bool = False) -> Iterator[tuple]:
    """Rows as tuples in COLUMNS order, oldest first, the same for the same seed.

    Values are what the database takes as text: a hex UUID, a UTC time, a decimal string, JSON text
    (naive UTC times for SQLite, as Django stores them there). Written for speed: a million rows is
    the benchmark's seed, so every call per row counts.
    """
    rng = random.Random(plan.seed)
    draw, gauss, bits = rng.random, rng.gauss, rng.getrandbits
    users = [f"user-{i:05d}" for i in range(1, plan.users + 1)]
    user_cum = _cumulative([1 / (rank**1.1) for rank in range(1, plan.users + 1)])
    apps = list(APPLICATIONS)
    app_cum = _cumulative([APPLICATIONS[a][0] for a in apps])
    home = {u: apps[_pick(rng, app_cum)] for u in users}
    app_models = {a: (list(m), _cumulative(list(m.values()))) for a, (_, _, m) in APPLICATIONS.items()}
    prices = {m: Prices.per_million(Decimal(v[2]), Decimal(v[3])) for m, v in MODELS.items()}
    hour_cum = _cumulative(HOUR_WEIGHTS)
    error_cum = _cumulative([e[3] for e in ERRORS])
    prompts = [json.dumps([{"role": "user", "content": p}]) for p in PROMPTS]
    suffix = "" if sqlite else "+00:00"
    start, end = plan.start.timestamp(), plan.end.timestamp()
    version = (0x4000 << 64) | (0x8000 << 48)  # UUID version 4, RFC 4122 variant
    keep = ~((0xF000 << 64) | (0xC000 << 48))
    for day, count in _days(plan):
        base = day.timestamp()
        stamps = sorted(base + _pick(rng, hour_cum) * 3600 + draw() * 3600 for _ in range(count))
        for stamp in stamps:
            if not start <= stamp < end:
                # The first and last days are partial: squeeze the day's clock into the part inside the period.
                low, high = max(base, start), min(base + 86400, end)
                stamp = low + (high - low) * (stamp - base) / 86400
            created_at = datetime.fromtimestamp(stamp, UTC).replace(tzinfo=None).isoformat(" ") + suffix
            user = users[_pick(rng, user_cum)]
            app = home[user] if draw() < 0.9 else apps[_pick(rng, app_cum)]
            names, cum = app_models[app]
            model = names[_pick(rng, cum)]
            provider, litellm_model, _, _, ms_per_token, overhead = MODELS[model]
            embedding = model.startswith("text-embedding")
            prompt = int(math.exp(gauss(5.6, 0.8))) + 5
            completion = 0 if embedding else int(math.exp(gauss(5.0, 0.7))) + 1
            latency = int(overhead * math.exp(gauss(0, 0.35)) + completion * ms_per_token * (0.8 + 0.5 * draw()))
            roll = draw()
            streamed = not embedding and draw() < 0.4
            if roll < 0.03:
                error_type, http_status, message, _ = ERRORS[_pick(rng, error_cum)]
                status, latency = "error", 30_000 if error_type == "Timeout" else int(latency * 0.3)
                prompt = completion = 0
            elif roll < 0.035:
                completion = int(completion * draw())
                latency = int(latency * draw()) + 50
                status, http_status, error_type, message = "cancelled", 499, "cancelled", ""
            else:
                status, http_status, error_type, message = "success", 200, "", ""
            cost = cost_of(Usage(prompt=prompt, completion=completion), prices[model])
            yield (
                f"{(bits(128) & keep) | version:032x}",
                created_at,
                app,
                user,
                None,  # key_id
                APPLICATIONS[app][1],
                model,
                provider,
                litellm_model,
                prompts[int(draw() * len(prompts))],
                "" if status == "error" or embedding else ANSWERS[int(draw() * len(ANSWERS))],
                status,
                http_status,
                error_type,
                message,
                prompt,
                completion,
                prompt + completion,
                int(prompt * 0.5) if prompt and draw() < 0.1 else 0,  # cached_tokens
                0,  # reasoning_tokens
                str(cost),
                latency,
                int(overhead * (0.6 + 0.6 * draw())) if streamed and status != "error" else None,
                streamed,
                False,  # cache_hit
                DEMO_METADATA,
            )


def _pick(rng: random.Random, cum: list[float]) -> int:
    return bisect.bisect_left(cum, rng.random() * cum[-1])


COLUMNS = [
    "id",
    "created_at",
    "application_id",
    "user_id",
    "key_id",
    "endpoint",
    "model",
    "provider",
    "resolved_model",
    "messages",
    "response",
    "status",
    "http_status",
    "error_type",
    "error_message",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "streamed",
    "cache_hit",
    "metadata",
]


def demo_insert(rows: Iterator[tuple], *, batch_size: int = 20_000, progress=None) -> int:  # noqa: ANN001
    """Write rows in batches: COPY on PostgreSQL, executemany on SQLite; the ORM would take minutes per million."""
    from django.db import connection, transaction

    from chat.models import Request

    table = Request._meta.db_table
    names = ", ".join(connection.ops.quote_name(c) for c in COLUMNS)
    written = 0
    batch: list[tuple] = []

    def flush() -> None:
        nonlocal written
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for values in batch:
                        copy.write_row(values)
            else:
                marks = ", ".join(["%s"] * len(COLUMNS))
                cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", batch)
        written += len(batch)
        if progress:
            progress(written)
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return written
