"""Admin template tags for the Request list: a date hierarchy and pagination that never scan the table."""

from __future__ import annotations

import calendar
from datetime import date

from django import template
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.utils import formats, timezone
from django.utils.text import capfirst

from chat.models import Request

register = template.Library()


def _bounds() -> tuple[date, date] | None:
    """The local days of the oldest and newest rows: two index lookups (one MIN/MAX query would scan on SQLite)."""
    rows = Request.objects.values_list("created_at", flat=True)
    first, last = rows.order_by("created_at").first(), rows.order_by("-created_at").first()
    if first is None or last is None:
        return None
    return timezone.localtime(first).date(), timezone.localtime(last).date()


@register.inclusion_tag("admin/date_hierarchy.html")
def request_date_hierarchy(cl: ChangeList) -> dict:
    """Django's date hierarchy, with years, months and days offered from the table's first and last day
    instead of SELECT DISTINCT over every row (an empty month may be offered; it lists nothing)."""
    field = cl.date_hierarchy
    year, month, day = (cl.params.get(f"{field}__{part}") for part in ("year", "month", "day"))

    def link(filters: dict) -> str:
        return cl.get_query_string(filters, [f"{field}__"])

    bounds = _bounds()
    if bounds is None:
        return {"show": False}
    first, last = bounds
    if not (year or month or day) and first.year == last.year:
        year = str(first.year)
        if first.month == last.month:
            month = str(first.month)
    try:
        if year and month and day:
            when = date(int(year), int(month), int(day))
            return {
                "show": True,
                "back": {"link": link({f"{field}__year": year, f"{field}__month": month}), "title": _month(when)},
                "choices": [{"title": capfirst(formats.date_format(when, "MONTH_DAY_FORMAT"))}],
            }
        if year and month:
            y, m = int(year), int(month)
            days = [date(y, m, d) for d in range(1, calendar.monthrange(y, m)[1] + 1) if first <= date(y, m, d) <= last]
            return {
                "show": True,
                "back": {"link": link({f"{field}__year": year}), "title": year},
                "choices": [
                    {
                        "link": link({f"{field}__year": year, f"{field}__month": month, f"{field}__day": d.day}),
                        "title": capfirst(formats.date_format(d, "MONTH_DAY_FORMAT")),
                    }
                    for d in days
                ],
            }
        if year:
            y = int(year)
            span = ((first.year, first.month), (last.year, last.month))
            months = [date(y, m, 1) for m in range(1, 13) if span[0] <= (y, m) <= span[1]]
            return {
                "show": True,
                "back": {"link": link({}), "title": "All dates"},
                "choices": [
                    {"link": link({f"{field}__year": year, f"{field}__month": d.month}), "title": _month(d)}
                    for d in months
                ],
            }
    except ValueError:
        return {"show": False}
    return {
        "show": True,
        "back": None,
        "choices": [
            {"link": link({f"{field}__year": str(y)}), "title": str(y)} for y in range(first.year, last.year + 1)
        ],
    }


def _month(when: date) -> str:
    return capfirst(formats.date_format(when, "YEAR_MONTH_FORMAT"))


@register.inclusion_tag("admin/chat/request/pagination.html")
def request_pagination(cl: ChangeList) -> dict:
    """Newer / older links: the paginator knows whether a next page exists, not how many there are."""
    page = cl.page_num
    return {
        "page": page,
        "previous": cl.get_query_string({PAGE_VAR: page - 1}) if page > 1 else "",
        "next": cl.get_query_string({PAGE_VAR: page + 1}) if cl.paginator.num_pages > page else "",
    }
