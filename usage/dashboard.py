"""What the admin's usage dashboard shows for a period: cards, charts, and tables that drill into the Request list."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.http import QueryDict
from django.utils import timezone

from usage import selectors
from usage.charts import Bar, bar_chart
from usage.periods import PeriodError, local_start, parse_moment
from usage.serializers import money

PRESETS = {
    "today": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "month": "This month",
    "last-month": "Last month",
    "365d": "Last 12 months",
}
DEFAULT_PRESET = "30d"
TOP_USERS = 20
CARD_COST_PLACES = Decimal("0.0001")


def dashboard_period(params: QueryDict) -> tuple[datetime, datetime, str, list[str]]:
    """[since, until) from a preset or from since/until dates, the preset chosen, and any complaint."""
    zone = timezone.get_default_timezone()
    now = timezone.now()
    today = timezone.localtime(now, zone).date()
    errors: list[str] = []
    if params.get("since") or params.get("until"):
        try:
            since = parse_moment(params.get("since") or str(today), zone=zone, param="since")
            until = parse_moment(params["until"], zone=zone, param="until", end=True) if params.get("until") else now
            if since < until:
                return since, until, "", errors
            errors.append("The start of the period must come before its end.")
        except PeriodError as error:
            errors.append(f"{error.param}: {error}")
    preset = params.get("period", DEFAULT_PRESET)
    if preset not in PRESETS:
        errors.append(f"Unknown period '{preset}'.")
        preset = DEFAULT_PRESET
    days = {"today": 1, "7d": 7, "30d": 30, "90d": 90, "365d": 365}
    if preset in days:
        return local_start(today - timedelta(days=days[preset] - 1), zone), now, preset, errors
    first = today.replace(day=1)
    if preset == "month":
        return local_start(first, zone), now, preset, errors
    previous = (first - timedelta(days=1)).replace(day=1)
    return local_start(previous, zone), local_start(first, zone), preset, errors


def dashboard_context(params: QueryDict, *, changelist: str) -> dict:
    since, until, preset, errors = dashboard_period(params)
    application_id = params.get("application_id") or None
    model = params.get("model") or None
    interval = params.get("interval") or ("hour" if until - since <= timedelta(days=2) else "day")
    if interval not in ("day", "hour") or (interval == "hour" and until - since > timedelta(days=31)):
        errors.append("Hourly charts cover at most 31 days.")
        interval = "day"
    f = selectors.usage_filter(since=since, until=until, application_id=application_id, model=model)
    totals = selectors.usage_totals(f)
    overall = selectors.usage_percentiles(f).get(None, {})
    by_model = selectors.usage_by(f, "model")
    percentiles = selectors.usage_percentiles(f, by="model")
    by_application = selectors.usage_by(f, "application_id")
    users = selectors.usage_by(f, "user_id")
    series = selectors.usage_series(f, interval=interval)

    base = {"created_at__gte": since.isoformat(), "created_at__lt": until.isoformat()}
    if application_id:
        base["application_id"] = application_id
    if model:
        base["model"] = model

    def drill(**extra: str) -> str:
        return f"{changelist}?{urlencode({**base, **extra})}"

    def row(name: str, key: str, figures: selectors.Figures, extra: dict | None = None) -> dict:
        return {
            "key": key,
            "link": drill(**{name: key}),
            "figures": figures,
            "cost": money(figures.cost_usd),
            "error_rate": f"{figures.error_rate:.1%}",
            **(extra or {}),
        }

    def label(bucket: date | datetime) -> str:
        return bucket.strftime("%H:%M") if isinstance(bucket, datetime) else bucket.strftime("%b %d")

    return {
        "presets": PRESETS,
        "preset": preset,
        "since": since,
        "until": until,
        "since_date": timezone.localtime(since).date().isoformat(),
        "until_date": timezone.localtime(until - timedelta(microseconds=1)).date().isoformat(),
        "interval": interval,
        "time_zone": timezone.get_default_timezone_name(),
        "application_id": application_id or "",
        "model": model or "",
        "applications": selectors.usage_dimension_values("application_id"),
        "models": selectors.usage_dimension_values("model"),
        "errors": errors,
        "all_link": drill(),
        "errors_link": drill(status__exact="error"),
        "cards": [
            ("Requests", f"{totals.requests:,}"),
            ("Tokens", f"{totals.total_tokens:,}"),
            ("Cost (USD)", money(totals.cost_usd.quantize(CARD_COST_PLACES))),
            ("Error rate", f"{totals.error_rate:.2%}"),
            ("p95 latency", "–" if overall.get(0.95) is None else f"{overall[0.95]:,.0f} ms"),
            ("Avg latency", "–" if totals.avg_latency_ms is None else f"{totals.avg_latency_ms:,.0f} ms"),
            ("Users", f"{len(users):,}"),
        ],
        "charts": [
            (
                "Requests (errors in red)",
                bar_chart(
                    [
                        Bar(label(b), v.requests, v.errors, f"{label(b)}: {v.requests:,} requests, {v.errors:,} errors")
                        for b, v in series
                    ],
                    title="Requests",
                ),
            ),
            ("Cost (USD)", bar_chart([Bar(label(b), float(v.cost_usd)) for b, v in series], title="Cost (USD)")),
            ("Tokens", bar_chart([Bar(label(b), v.total_tokens) for b, v in series], title="Tokens")),
            (
                "Average latency (ms)",
                bar_chart([Bar(label(b), v.avg_latency_ms or 0) for b, v in series], title="Average latency (ms)"),
            ),
        ],
        "by_model": [
            row(
                "model",
                key,
                figures,
                {
                    "p50": percentiles.get(key, {}).get(0.5),
                    "p95": percentiles.get(key, {}).get(0.95),
                },
            )
            for key, figures in by_model
        ],
        "by_application": [row("application_id", key, figures) for key, figures in by_application],
        "users": [row("user_id", key, figures) for key, figures in users[:TOP_USERS]],
        "user_count": len(users),
    }
