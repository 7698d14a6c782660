"""Retention: deletes Request rows and JSON log files older than a period."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from chat.models import Request
from usage.management.commands._options import parse_duration
from usage.rollups import rollup_forget_before

BATCH = 5_000


def log_file_time(entry: os.DirEntry) -> datetime:
    """When a JSON log file was written: the UTC time its name starts with, else its modification time."""
    try:
        return datetime.strptime(entry.name.split("_", 1)[0], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    except ValueError:
        return datetime.fromtimestamp(entry.stat().st_mtime, tz=UTC)


class Command(BaseCommand):
    help = (
        "Delete Request rows created before now minus --older-than (90d, 12w, 6m, 24h), in batches, and the JSON "
        "log files of LLM_LOG_DIR as old. The usage rollups of those days go with them. --dry-run only counts."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--older-than", required=True, help="Keep this much history: 90d, 12w, 6m or 24h.")
        parser.add_argument("--dry-run", action="store_true", help="Count what would go; delete nothing.")
        parser.add_argument("--keep-logs", action="store_true", help="Leave the JSON log files alone.")
        parser.add_argument("--log-dir", help="The JSON log folder (LLM_LOG_DIR by default).")

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        cutoff = timezone.now() - parse_duration(options["older_than"], option="--older-than")
        log_dir = None if options["keep_logs"] else (options["log_dir"] or settings.LLM_LOG_DIR or None)
        if options["log_dir"] and not Path(options["log_dir"]).is_dir():
            raise CommandError(f"--log-dir: {options['log_dir']} is not a folder.")
        old = Request.objects.filter(created_at__lt=cutoff)
        if options["dry_run"]:
            rows = old.count()
            files = sum(1 for _ in self.old_files(log_dir, cutoff))
            self.stdout.write(
                f"Would delete {rows:,} rows and {files:,} log files from before {cutoff:%Y-%m-%d %H:%M}."
            )
            return
        rows = 0
        while True:
            # Batches keep each transaction (and its locks and undo log) small on a table of millions.
            batch = list(old.order_by("created_at").values_list("id", flat=True)[:BATCH])
            if not batch:
                break
            rows += Request.objects.filter(id__in=batch).delete()[0]
        if rows:
            rollup_forget_before(cutoff)
        files = 0
        for entry in self.old_files(log_dir, cutoff):
            Path(entry.path).unlink(missing_ok=True)
            files += 1
        if options["verbosity"] > 0:
            self.stdout.write(f"Deleted {rows:,} rows and {files:,} log files from before {cutoff:%Y-%m-%d %H:%M}.")

    def old_files(self, log_dir: str | None, cutoff: datetime):  # type: ignore[no-untyped-def]
        if not log_dir or not Path(log_dir).is_dir():
            return
        with os.scandir(log_dir) as entries:  # one entry at a time: a year of logs is millions of files
            for entry in entries:
                if entry.is_file() and entry.name.endswith(".json") and log_file_time(entry) < cutoff:
                    yield entry
