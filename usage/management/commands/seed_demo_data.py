"""Fills the Request table with realistic synthetic calls for demos and benchmarks."""

from __future__ import annotations

import sys
import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from usage.demo import DemoPlan, demo_insert, demo_rows
from usage.rollups import local_date, rollup_mark_dirty, rollup_refresh


class Command(BaseCommand):
    help = (
        "Add N synthetic Request rows spread over the last months (users, applications, models, errors), "
        'then bring the usage rollups up to date. Rows carry metadata {"demo": true}.'
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--rows", type=int, required=True, help="How many rows to add.")
        parser.add_argument("--months", type=int, default=12, help="Spread them over this many months (12).")
        parser.add_argument("--users", type=int, default=500, help="Distinct users (500).")
        parser.add_argument("--seed", type=int, default=42, help="Random seed: the same seed gives the same rows.")
        parser.add_argument("--batch-size", type=int, default=20_000)

    def handle(self, *args, rows: int, months: int, users: int, seed: int, batch_size: int, **options) -> None:  # type: ignore[no-untyped-def]
        if rows < 1:
            raise CommandError("--rows must be at least 1.")
        if months < 1 or months > 120:
            raise CommandError("--months must be between 1 and 120.")
        if users < 1:
            raise CommandError("--users must be at least 1.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        end = timezone.now()
        start = end - timedelta(days=round(months * 30.44))
        plan = DemoPlan(rows=rows, start=start, end=end, users=users, seed=seed)
        verbose = options["verbosity"] > 0
        tty = verbose and sys.stdout.isatty()
        began = time.perf_counter()

        def progress(done: int) -> None:
            if tty:
                self.stdout.write(f"\r{done:,} / {rows:,} rows", ending="")
                self.stdout.flush()

        rows_in = demo_rows(plan, sqlite=connection.vendor == "sqlite")
        written = demo_insert(rows_in, batch_size=batch_size, progress=progress)
        if tty:
            self.stdout.write("")
        inserted = time.perf_counter() - began
        day = local_date(start)
        days = []
        while day <= local_date(end):
            days.append(day)
            day += timedelta(days=1)
        rollup_mark_dirty(days)
        rolled = rollup_refresh().rolled_days
        # Fresh statistics (and, on PostgreSQL, a visibility map for index-only scans) after a bulk load.
        vacuum = connection.vendor == "postgresql" and not connection.in_atomic_block  # VACUUM needs autocommit
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE chat_request" if vacuum else "ANALYZE")
        if verbose:
            self.stdout.write(
                f"Added {written:,} rows from {start:%Y-%m-%d} to {end:%Y-%m-%d} in {inserted:.1f}s; "
                f"rolled up {rolled} days in {time.perf_counter() - began - inserted:.1f}s."
            )
