"""Request rows as CSV or JSON Lines, streamed: one chunk of rows in memory at a time, whatever the table size."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast

# Every column of a Request row; the key appears as its id only (its hash and secret never leave the table).
FIELDS = [
    "id",
    "created_at",
    "application_id",
    "user_id",
    "key_id",
    "endpoint",
    "model",
    "provider",
    "resolved_model",
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
    "messages",
    "response",
    "metadata",
]
JSON_FIELDS = frozenset({"messages", "metadata"})
FORMATS = ("csv", "jsonl")
CHUNK_ROWS = 2000


def _iso(value: datetime) -> str:
    return value.isoformat()


def _money(value: Decimal) -> str:
    return format(value, "f")  # every place, never 1E-7; a string in JSON, where a float would lose cents


def _flag(value: bool) -> str:
    return "true" if value else "false"


# Columns csv.writer would write badly by itself; the rest (text, numbers, None as '') go as they are.
CSV_CELLS = {"id": str, "created_at": _iso, "cost_usd": _money, "streamed": _flag, "cache_hit": _flag}
JSON_CELLS = {"id": str, "created_at": _iso, "cost_usd": _money}


def export_rows(queryset: QuerySet, *, fmt: str, on_rows=None) -> Iterator[str]:  # noqa: ANN001
    """The rows of `queryset` as text chunks in `fmt` (csv or jsonl), in the queryset's order.

    `on_rows(n)` is called after each chunk with the number of rows written so far.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}")
    cells = CSV_CELLS if fmt == "csv" else JSON_CELLS
    convert = [(i, cells[name]) for i, name in enumerate(FIELDS) if name in cells]
    if fmt == "csv":
        yield _csv([FIELDS])
    # The JSON columns are read as their JSON text, not decoded and encoded again for every row.
    rows = queryset.annotate(**{f"{name}_text": Cast(name, TextField()) for name in JSON_FIELDS})
    columns = [f"{name}_text" if name in JSON_FIELDS else name for name in FIELDS]
    written = 0
    chunk: list[list] = []
    for values in rows.values_list(*columns).iterator(chunk_size=CHUNK_ROWS):
        values = list(values)
        for i, cell in convert:
            if values[i] is not None:
                values[i] = cell(values[i])
        chunk.append(values)
        if len(chunk) >= CHUNK_ROWS:
            written += len(chunk)
            yield _csv(chunk) if fmt == "csv" else _jsonl(chunk)
            chunk = []
            if on_rows:
                on_rows(written)
    if chunk:
        written += len(chunk)
        yield _csv(chunk) if fmt == "csv" else _jsonl(chunk)
        if on_rows:
            on_rows(written)


def _csv(rows: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


PLAIN = [(i, name) for i, name in enumerate(FIELDS) if name not in JSON_FIELDS]
RAW_JSON = [(i, name) for i, name in enumerate(FIELDS) if name in JSON_FIELDS]


def _jsonl(rows: list[list]) -> str:
    lines = []
    for values in rows:
        head = json.dumps({name: values[i] for i, name in PLAIN}, ensure_ascii=False, separators=(",", ":"))
        tail = ",".join(f'"{name}":{"null" if values[i] is None else values[i]}' for i, name in RAW_JSON)
        lines.append(f"{head[:-1]},{tail}}}\n")
    return "".join(lines)


def export_filename(fmt: str, now: datetime) -> str:
    return f"requests-{now:%Y%m%d-%H%M%S}.{fmt}"
