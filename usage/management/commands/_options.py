"""Options the usage commands share: a period and row filters, parsed into a queryset or a CommandError."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.management.base import CommandError
from django.db.models import QuerySet
from django.utils import timezone

from chat.models import Request
from usage.periods import PeriodError, parse_moment

STATUSES = [choice for choice, _ in Request.Status.choices]


def add_period_arguments(parser) -> None:  # noqa: ANN001 - an argparse parser
    parser.add_argument("--since", help="Start: an ISO date or date-time (TIME_ZONE when no offset given).")
    parser.add_argument("--until", help="End (exclusive; a bare date includes that day).")


def add_filter_arguments(parser) -> None:  # noqa: ANN001
    parser.add_argument("--user", help="Only this user id.")
    parser.add_argument("--app", help="Only this application id.")
    parser.add_argument("--model", help="Only this model (the name callers asked for).")
    parser.add_argument("--status", choices=STATUSES, help="Only calls with this status.")


def parse_period(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    zone = timezone.get_default_timezone()
    try:
        start = parse_moment(since, zone=zone, param="--since") if since else None
        end = parse_moment(until, zone=zone, param="--until", end=True) if until else None
    except PeriodError as error:
        raise CommandError(f"{error.param}: {error}") from None
    if start and end and start > end:
        raise CommandError("--since must not be after --until.")
    return start, end


def parse_duration(text: str, *, option: str) -> timedelta:
    """'90d', '12w', '6m' (30-day months), '24h' or a bare number of days."""
    units = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1), "m": timedelta(days=30)}
    text = text.strip().lower()
    unit = units.get(text[-1:]) if text[-1:].isalpha() else timedelta(days=1)
    number = text[:-1] if text[-1:].isalpha() else text
    if unit is None or not number.isdigit() or int(number) < 1:
        raise CommandError(f"{option}: '{text}' is not a period like 90d, 12w, 6m or 24h.")
    return int(number) * unit


def filtered_requests(*, since=None, until=None, user=None, app=None, model=None, status=None) -> QuerySet:  # noqa: ANN001
    """The Request rows the options select, oldest first."""
    rows = Request.objects.all()
    if since:
        rows = rows.filter(created_at__gte=since)
    if until:
        rows = rows.filter(created_at__lt=until)
    for field, value in (("user_id", user), ("application_id", app), ("model", model), ("status", status)):
        if value is not None:
            rows = rows.filter(**{field: value})
    return rows.order_by("created_at", "id")
