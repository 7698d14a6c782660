"""Restores Request rows from the JSON log files whose rows are missing (after the database was down, say)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models.signals import post_save
from django.utils.dateparse import parse_datetime

from chat.models import ApiKey, Request

BATCH = 500
FIELDS = {f.attname for f in Request._meta.concrete_fields}


def log_paths(folder: Path) -> Iterator[Path]:
    """The JSON log files of a folder, oldest name first, skipping files still being written."""
    with os.scandir(folder) as entries:
        names = sorted(e.name for e in entries if e.is_file() and e.name.endswith(".json"))
    for name in names:
        if not name.startswith(".tmp-"):
            yield folder / name


def row_from_entry(entry: dict) -> Request:
    """The Request a log entry describes: its "row", plus the messages, metadata and answer kept beside it."""
    row = {k: v for k, v in entry["row"].items() if k in FIELDS}
    row["id"] = uuid.UUID(str(row["id"]))
    # The entry's own "timestamp" keeps microseconds; DjangoJSONEncoder cut the row's copy to milliseconds.
    created = entry.get("timestamp") or row.get("created_at")
    row["created_at"] = parse_datetime(created) if isinstance(created, str) else None
    if row["created_at"] is None:
        raise ValueError("no timestamp")
    row["cost_usd"] = Decimal(str(row.get("cost_usd", "0")))
    request, response = entry.get("request") or {}, entry.get("response") or {}
    return Request(
        **row,
        messages=request.get("messages"),
        metadata=request.get("metadata") or {},
        response=response.get("content") or "",
    )


class Command(BaseCommand):
    help = (
        "Read the JSON log files (LLM_LOG_DIR) and insert the Request rows that are missing from the database. "
        "Running it twice imports nothing the second time."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--log-dir", help="The JSON log folder (LLM_LOG_DIR by default).")
        parser.add_argument("--dry-run", action="store_true", help="Count the missing rows; insert nothing.")

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        folder = options["log_dir"] or settings.LLM_LOG_DIR
        if not folder:
            raise CommandError("No log folder: LLM_LOG_DIR is empty; pass --log-dir.")
        if not Path(folder).is_dir():
            raise CommandError(f"--log-dir: {folder} is not a folder.")
        counts = {"files": 0, "imported": 0, "present": 0, "unreadable": 0}
        batch: list[Request] = []
        for path in log_paths(Path(folder)):
            counts["files"] += 1
            try:
                batch.append(row_from_entry(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
                counts["unreadable"] += 1
                self.stderr.write(f"Skipped {path.name}: {error}")
                continue
            if len(batch) >= BATCH:
                self.import_batch(batch, counts, dry_run=options["dry_run"])
                batch = []
        if batch:
            self.import_batch(batch, counts, dry_run=options["dry_run"])
        if options["verbosity"] > 0:
            verb = "Would import" if options["dry_run"] else "Imported"
            self.stdout.write(
                f"{verb} {counts['imported']:,} rows from {counts['files']:,} files "
                f"({counts['present']:,} already present, {counts['unreadable']:,} unreadable)."
            )

    def import_batch(self, batch: list[Request], counts: dict, *, dry_run: bool) -> None:
        present = set(Request.objects.filter(id__in=[r.id for r in batch]).values_list("id", flat=True))
        missing = list({r.id: r for r in batch if r.id not in present}.values())
        counts["present"] += len(batch) - len(missing)
        counts["imported"] += len(missing)
        if dry_run or not missing:
            return
        keys = set(ApiKey.objects.filter(id__in={r.key_id for r in missing if r.key_id}).values_list("id", flat=True))
        for row in missing:
            if row.key_id not in keys:
                row.key_id = None  # the key was deleted since; the row stays
        with transaction.atomic():
            Request.objects.bulk_create(missing, ignore_conflicts=True)
        for row in missing:
            # bulk_create sends no signal: tell listeners (the usage rollups) these rows arrived late.
            post_save.send(sender=Request, instance=row, created=True, update_fields=None, raw=False, using="default")
