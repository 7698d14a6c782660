"""Brings the usage rollups up to date, or rebuilds them from the rows."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from usage.rollups import rollup_rebuild, rollup_refresh


class Command(BaseCommand):
    help = (
        "Roll up the days that closed since the last read (pages do this on their own). With --rebuild, forget "
        "every rollup and sum every day again: needed only after rows were changed behind the gateway's back "
        "(bulk SQL, a restore)."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--rebuild", action="store_true", help="Sum every day again from the rows.")

    def handle(self, *args, rebuild: bool, **options) -> None:  # type: ignore[no-untyped-def]
        days = rollup_rebuild() if rebuild else rollup_refresh().rolled_days
        if options["verbosity"] > 0:
            self.stdout.write(f"Rolled up {days} whole days, and today so far.")
