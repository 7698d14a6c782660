"""The `/usage` page: the signed-in person's own usage; staff may look at anyone's, or everyone's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from chat.pages import LOGIN_URL, admin_request_url, page
from usage.periods import PeriodError, local_start, parse_moment
from usage.selectors import (
    Figures,
    requests_page,
    usage_by,
    usage_distinct,
    usage_filter,
    usage_percentiles,
    usage_series,
    usage_totals,
)

# The period picker: name → (label, days back from today, chart interval).
PERIODS = {
    "24h": ("24 hours", None, "hour"),
    "7d": ("7 days", 7, "day"),
    "30d": ("30 days", 30, "day"),
    "90d": ("90 days", 90, "day"),
}
DEFAULT_PERIOD = "7d"
MAX_CUSTOM_DAYS = 366
PAGE_SIZE = 20
ALL_USERS = None


@dataclass(frozen=True)
class Period:
    name: str  # one of PERIODS, or "custom"
    since: datetime
    until: datetime
    interval: str
    label: str


def period_from(params: dict[str, str], now: datetime) -> Period:
    """The period the query string asks for: a named one, or custom `since`/`until` dates (both included)."""
    zone = timezone.get_default_timezone()
    since_text, until_text = params.get("since", "").strip(), params.get("until", "").strip()
    if since_text or until_text:
        until = parse_moment(until_text, zone=zone, param="until", end=True) if until_text else now
        since = (
            parse_moment(since_text, zone=zone, param="since")
            if since_text
            else local_start(timezone.localtime(until, zone).date() - timedelta(days=29), zone)
        )
        if since >= until:
            raise PeriodError("The start of the period must be before its end.", "since")
        if until - since > timedelta(days=MAX_CUSTOM_DAYS):
            raise PeriodError(f"A period covers at most {MAX_CUSTOM_DAYS} days.", "since")
        interval = "hour" if until - since <= timedelta(days=2) else "day"
        first, last = timezone.localtime(since, zone), timezone.localtime(until - timedelta(seconds=1), zone)
        label = f"{first:%d %b %Y} – {last:%d %b %Y}"
        return Period("custom", since, until, interval, label)
    name = params.get("period", DEFAULT_PERIOD)
    if name not in PERIODS:
        raise PeriodError(f"Unknown period '{name}'; pick one of {', '.join(PERIODS)}.", "period")
    label, days, interval = PERIODS[name]
    if days is None:
        since = now - timedelta(hours=24)
    else:  # whole local days, today included
        since = local_start(timezone.localtime(now, zone).date() - timedelta(days=days - 1), zone)
    return Period(name, since, now, interval, f"Last {label}")


def subject_of(request: HttpRequest) -> str | None:
    """Whose usage is shown: one's own; staff may name anyone, or leave the field empty for everyone."""
    own = request.user.get_username()
    if not request.user.is_staff or "user" not in request.GET:
        return own
    return request.GET["user"].strip() or ALL_USERS


def usd(value: Decimal) -> str:
    """Dollars for people: four places from a cent up, every significant place below it."""
    if value == 0:
        return "$0"
    places = Decimal("0.0001") if abs(value) >= Decimal("0.01") else Decimal("1e-10")
    text = format(value.quantize(places), ",f").rstrip("0").rstrip(".")
    return f"${text}"


def number(n: int) -> str:
    """A count for a card: exact with separators below a million, then in millions or billions."""
    if n >= 1_000_000_000:
        return f"{n / 1_000_000_000:.2f}B"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.2f}M"
    return f"{n:,}"


def duration(ms: float | None) -> str:
    if ms is None:
        return "–"
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.0f} ms"


def breakdown(rows: list[tuple[str, Figures]], total: Figures) -> list[dict]:
    """Rows of a breakdown table, each with its share of the cost (or of the requests when nothing cost)."""
    out = []
    for name, figures in rows:
        if total.cost_units:
            share = figures.cost_units / total.cost_units
        else:
            share = figures.requests / total.requests if total.requests else 0
        out.append(
            {
                "name": name or "(none)",
                "requests": f"{figures.requests:,}",
                "errors": f"{figures.errors:,}",
                "tokens": f"{figures.total_tokens:,}",
                "cost": usd(figures.cost_usd),
                "latency": duration(figures.avg_latency_ms),
                "share": round(share * 100, 1),
            }
        )
    return out


def chart_data(series: list, interval: str) -> list[dict]:
    zone = timezone.get_default_timezone()
    points = []
    for bucket, figures in series:
        if interval == "hour":
            local = timezone.localtime(bucket, zone)
            label, full = f"{local:%H}h", f"{local:%d %b %H:00}"
        else:
            label, full = f"{bucket:%d %b}", f"{bucket:%a %d %b %Y}"
        points.append(
            {
                "label": label,
                "title": full,
                "requests": figures.requests,
                "errors": figures.errors,
                "tokens": figures.total_tokens,
                "cost": float(figures.cost_usd),  # drawing only; every figure shown as text is exact
                "cost_text": usd(figures.cost_usd),
            }
        )
    return points


def known_users(period: Period) -> list[str]:
    """The users with requests in the period, the busiest first, for the staff's user picker."""
    everyone = usage_filter(since=period.since, until=period.until)
    return [name for name, _ in usage_by(everyone, "user_id", order="requests", limit=200) if name]


def page_url(request: HttpRequest, **changes: object) -> str:
    """This page's query string with some parameters changed (None removes one)."""
    params = dict(request.GET.items())
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = str(value)
    return "?" + urlencode(params)


@page
@login_required(login_url=LOGIN_URL)
def usage_page(request: HttpRequest) -> HttpResponse:
    """Cards, charts over time, breakdowns by application and model, and recent requests."""
    now = timezone.now()
    error = None
    try:
        period = period_from(request.GET, now)
    except PeriodError as exc:
        error = str(exc)
        period = period_from({}, now)
    subject = subject_of(request)
    try:
        page_number = max(1, min(int(request.GET.get("page", "1")), 10_000))
    except ValueError:
        page_number = 1

    f = usage_filter(since=period.since, until=period.until, user_id=subject)
    totals = usage_totals(f)
    latency = usage_percentiles(f).get(None, {})
    recent, more = requests_page(f, page=page_number, page_size=PAGE_SIZE)
    is_staff = request.user.is_staff
    context = {
        "page": "usage",
        "error": error,
        "period": period,
        "periods": [
            (name, label, page_url(request, period=name, since=None, until=None, page=None))
            for name, (label, _, _) in PERIODS.items()
        ],
        "subject": subject,
        "everyone": subject is ALL_USERS,
        "is_staff": is_staff,
        "since_value": request.GET.get("since", "") if period.name == "custom" else "",
        "until_value": request.GET.get("until", "") if period.name == "custom" else "",
        "cards": {
            "total_requests": totals.requests,
            "requests_text": number(totals.requests),
            "errors": totals.errors,
            "errors_text": number(totals.errors),
            "total_tokens": totals.total_tokens,
            "tokens_text": number(totals.total_tokens),
            "prompt_text": number(totals.prompt_tokens),
            "completion_text": number(totals.completion_tokens),
            "total_cost_usd": usd(totals.cost_usd),
            "avg_response_time": duration(totals.avg_latency_ms),
            "p95_response_time": duration(latency.get(0.95)),
            "apps_used": usage_distinct(f, "application_id") if totals.requests else 0,
            "models_used": usage_distinct(f, "model") if totals.requests else 0,
        },
        "breakdowns": [
            ("By application", "Application", breakdown(usage_by(f, "application_id", limit=20), totals)),
            ("By model", "Model", breakdown(usage_by(f, "model", limit=20), totals)),
        ],
        "chart": {
            "interval": period.interval,
            "points": chart_data(usage_series(f, interval=period.interval), period.interval),
        },
        "known_users": known_users(period) if is_staff else [],
        "recent": [
            {
                "row": row,
                "tokens": f"{row.total_tokens:,}",
                "cost": usd(row.cost_usd),
                "latency": duration(row.latency_ms),
                "admin_url": admin_request_url(request, str(row.id)),
            }
            for row in recent
        ],
        "older_url": page_url(request, page=page_number + 1) if more else None,
        "newer_url": page_url(request, page=page_number - 1 if page_number > 2 else None) if page_number > 1 else None,
    }
    return render(request, "usage/index.html", context, status=400 if error else 200)
