"""Query parameters of the usage endpoints, and the shapes of their answers."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.utils import timezone
from rest_framework import serializers

from chat.models import Request
from usage.periods import PeriodError, local_start, parse_moment
from usage.selectors import Figures

DEFAULT_DAYS = 30
MAX_HOURLY_DAYS = 31


class PeriodInput(serializers.Serializer):
    """`since` / `until` (ISO dates or date-times, TIME_ZONE when no offset), `model`, `application_id`, `interval`.

    Without `since`, the period is the last 30 local days, today included; without `until`, it ends now.
    """

    since = serializers.CharField(required=False, max_length=40)
    until = serializers.CharField(required=False, max_length=40)
    model = serializers.CharField(required=False, max_length=100)
    application_id = serializers.CharField(required=False, max_length=100)
    interval = serializers.ChoiceField(choices=["day", "hour"], default="day")

    def validate(self, attrs: dict) -> dict:
        zone = timezone.get_default_timezone()
        try:
            until = parse_moment(attrs["until"], zone=zone, param="until", end=True) if "until" in attrs else None
            since = parse_moment(attrs["since"], zone=zone, param="since") if "since" in attrs else None
        except PeriodError as error:
            raise serializers.ValidationError({error.param: [str(error)]}) from None
        until = until or timezone.now()
        if since is None:
            since = local_start(timezone.localtime(until, zone).date() - timedelta(days=DEFAULT_DAYS - 1), zone)
            since = min(since, until)
        if since > until:
            raise serializers.ValidationError({"since": ["Must not be after until."]})
        if attrs["interval"] == "hour" and until - since > timedelta(days=MAX_HOURLY_DAYS):
            raise serializers.ValidationError({"interval": [f"Hourly series cover at most {MAX_HOURLY_DAYS} days."]})
        return {**attrs, "since": since, "until": until}


class UserUsageInput(PeriodInput):
    page = serializers.IntegerField(required=False, default=1, min_value=1, max_value=10_000)
    page_size = serializers.IntegerField(required=False, default=20, min_value=1, max_value=100)


class StatsInput(PeriodInput):
    top = serializers.IntegerField(required=False, default=10, min_value=1, max_value=100)


def query_params(serializer_class: type[PeriodInput], params) -> dict:  # noqa: ANN001 - a QueryDict
    """Validated query parameters, or a 400 naming the bad one."""
    serializer = serializer_class(data={k: params.get(k) for k in params})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def money(value) -> str:  # noqa: ANN001 - a Decimal
    """Money leaves as a decimal string with every place (never '0E-10'): a float would not add up."""
    return format(value, "f")


def figures_body(figures: Figures) -> dict:
    body = figures.as_dict()
    body["cost_usd"] = money(body["cost_usd"])
    return body


def summary_body(figures: Figures, **extra: object) -> dict:
    """The summary block: the contract's names first, then the rest of the figures."""
    avg = figures.avg_latency_ms
    return {
        "total_requests": figures.requests,
        "total_tokens": figures.total_tokens,
        "total_cost_usd": money(figures.cost_usd),
        "avg_response_time": None if avg is None else round(avg / 1000, 3),
        **extra,
        "prompt_tokens": figures.prompt_tokens,
        "completion_tokens": figures.completion_tokens,
        "errors": figures.errors,
        "cancelled": figures.cancelled,
        "error_rate": figures.error_rate,
        "avg_latency_ms": avg,
    }


def group_body(name: str, key: str, figures: Figures, percentiles: dict | None = None) -> dict:
    body = {name: key, **figures_body(figures)}
    if percentiles is not None:
        body["p50_latency_ms"] = percentiles.get(0.5)
        body["p95_latency_ms"] = percentiles.get(0.95)
    return body


def series_body(series: list[tuple[date | datetime, Figures]]) -> list[dict]:
    out = []
    for bucket, figures in series:
        out.append({"hour" if isinstance(bucket, datetime) else "date": bucket.isoformat(), **figures_body(figures)})
    return out


def period_body(data: dict) -> dict:
    return {
        "since": data["since"].isoformat(),
        "until": data["until"].isoformat(),
        "time_zone": timezone.get_default_timezone_name(),
        "interval": data["interval"],
    }


def request_body(row: Request) -> dict:
    return {
        "request_id": str(row.id),
        "created_at": row.created_at.isoformat(),
        "application_id": row.application_id,
        "user_id": row.user_id,
        "endpoint": row.endpoint,
        "model": row.model,
        "status": row.status,
        "error_type": row.error_type,
        "tokens": {"prompt": row.prompt_tokens, "completion": row.completion_tokens, "total": row.total_tokens},
        "cost_usd": money(row.cost_usd),
        "latency_ms": row.latency_ms,
        "streamed": row.streamed,
    }
