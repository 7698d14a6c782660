"""Usage per user, application or model over a period, as a table, CSV or JSON."""

from __future__ import annotations

import csv
import json
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from usage import selectors
from usage.management.commands._options import add_period_arguments, parse_period
from usage.periods import local_start
from usage.serializers import money

GROUPS = {"user": "user_id", "app": "application_id", "model": "model"}
COLUMNS = ["requests", "errors", "error_rate", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"]


class Command(BaseCommand):
    help = (
        "Requests, errors, tokens, cost and latency per user, application or model over a period "
        "(the last 30 days by default), largest cost first, with a total line."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--by", choices=list(GROUPS), default="model", help="Group by user, app or model.")
        parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
        parser.add_argument("--order", choices=list(selectors.ORDERS), default="cost", help="Largest first by this.")
        parser.add_argument("--limit", type=int, help="Only the first N groups (the total still covers all).")
        parser.add_argument("--app", help="Only this application id.")
        parser.add_argument("--model", help="Only this model.")
        add_period_arguments(parser)

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be at least 1.")
        since, until = parse_period(options["since"], options["until"])
        until = until or timezone.now()
        if since is None:
            zone = timezone.get_default_timezone()
            since = local_start(timezone.localtime(until, zone).date() - timedelta(days=29), zone)
        if since > until:
            raise CommandError("--since must not be after --until.")
        f = selectors.usage_filter(since=since, until=until, application_id=options["app"], model=options["model"])
        by = GROUPS[options["by"]]
        groups = selectors.usage_by(f, by, order=options["order"], limit=options["limit"])
        # Percentiles per user would sort every user's rows: per model and application only.
        percentiles = selectors.usage_percentiles(f, by=by) if by != "user_id" else {}
        rows = [self.row(by, key, figures, percentiles.get(key)) for key, figures in groups]
        total = self.row(by, "(total)", selectors.usage_totals(f), selectors.usage_percentiles(f).get(None))
        period = {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "time_zone": str(timezone.get_default_timezone()),
        }
        getattr(self, f"write_{options['format']}")(rows, total, period, by)

    def row(self, by: str, key: str, figures: selectors.Figures, percentiles: dict | None) -> dict:
        body = {by: key, **{name: value for name, value in figures.as_dict().items() if name in COLUMNS}}
        body["cost_usd"] = money(figures.cost_usd)
        body["avg_latency_ms"] = figures.avg_latency_ms
        if percentiles is not None:
            body["p50_latency_ms"], body["p95_latency_ms"] = percentiles.get(0.5), percentiles.get(0.95)
        return body

    def write_json(self, rows: list[dict], total: dict, period: dict, by: str) -> None:
        total.pop(by)
        self.stdout.write(json.dumps({"period": period, "by": by, "rows": rows, "total": total}, indent=2))

    def write_csv(self, rows: list[dict], total: dict, period: dict, by: str) -> None:
        names = list(rows[0] if rows else total)
        writer = csv.DictWriter(self.stdout, fieldnames=names, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows([*rows, total])

    def write_table(self, rows: list[dict], total: dict, period: dict, by: str) -> None:
        names = list(rows[0] if rows else total)
        cells = [[_cell(r.get(n)) for n in names] for r in [*rows, total]]
        widths = [max(len(n), *(len(c[i]) for c in cells)) for i, n in enumerate(names)]
        self.stdout.write(f"Usage by {by}, {period['since']} to {period['until']} ({period['time_zone']})")
        self.stdout.write(
            "  ".join(n.ljust(w) if i == 0 else n.rjust(w) for i, (n, w) in enumerate(zip(names, widths, strict=True)))
        )
        for k, line in enumerate(cells):
            if k == len(cells) - 1:
                self.stdout.write("  ".join("-" * w for w in widths))
            self.stdout.write(
                "  ".join(
                    c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))
                )
            )


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if value < 1 else f"{value:.1f}"
    return str(value)
