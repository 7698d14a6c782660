"""Exports Request rows as CSV or JSON Lines, streamed in constant memory."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.base import ProgressBar

from usage.exports import FORMATS, export_rows
from usage.management.commands._options import (
    add_filter_arguments,
    add_period_arguments,
    filtered_requests,
    parse_period,
)


class Command(BaseCommand):
    help = (
        "Write Request rows (oldest first) as CSV or JSON Lines to a file or stdout. Rows are read a chunk at "
        "a time, so memory stays flat on any table size; a progress bar shows when writing a file from a terminal."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--format", choices=FORMATS, default="csv", help="csv (default) or jsonl.")
        parser.add_argument("--output", "-o", default="-", help="File to write; '-' (default) for stdout.")
        add_period_arguments(parser)
        add_filter_arguments(parser)

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        since, until = parse_period(options["since"], options["until"])
        rows = filtered_requests(
            since=since,
            until=until,
            user=options["user"],
            app=options["app"],
            model=options["model"],
            status=options["status"],
        )
        path = options["output"]
        if path == "-":
            for chunk in export_rows(rows, fmt=options["format"]):
                self.stdout.write(chunk, ending="")
            return
        # As dumpdata does: progress only for a person watching a terminal, nothing in scripts and cron.
        show = options["verbosity"] > 0 and self.stdout.isatty()
        progress = ProgressBar(self.stdout, rows.count()) if show else None
        written = 0

        def on_rows(count: int) -> None:
            nonlocal written
            written = count
            if progress:
                progress.update(count)

        try:
            with open(path, "w", encoding="utf-8", newline="") as handle:
                for chunk in export_rows(rows, fmt=options["format"], on_rows=on_rows):
                    handle.write(chunk)
        except OSError as error:
            raise CommandError(f"--output: cannot write {path}: {error.strerror}.") from None
        if show:
            self.stdout.write(f"\nExported {written:,} rows to {path}.")
        elif options["verbosity"] > 1:
            sys.stderr.write(f"Exported {written:,} rows to {path}.\n")
