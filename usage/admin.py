"""Staff views of the Request table: a read-only list that stays fast on millions of rows, CSV export, a dashboard."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from functools import cached_property

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from chat.models import Request
from usage import dashboard, selectors
from usage.exports import export_filename, export_rows
from usage.periods import PeriodError, local_start, parse_moment
from usage.serializers import money


class CountlessPaginator(Paginator):
    """Counts only as far as the row after this page: enough to offer a next page, never a COUNT(*)."""

    def __init__(self, object_list, per_page, *, page_number: int = 1, **kwargs) -> None:  # noqa: ANN001
        super().__init__(object_list, per_page, **kwargs)
        self.page_number = max(page_number, 1)

    @cached_property
    def count(self) -> int:
        start = (self.page_number - 1) * self.per_page
        return start + len(self.object_list.values_list("pk", flat=True)[start : start + self.per_page + 1])


class DimensionFilter(admin.SimpleListFilter):
    """Choices from the rollups (a small table) instead of SELECT DISTINCT over every row."""

    field = ""

    def lookups(self, request, model_admin):  # type: ignore[no-untyped-def]
        return [(value, value or "(none)") for value in selectors.usage_dimension_values(self.field)]

    def queryset(self, request, queryset):  # type: ignore[no-untyped-def]
        value = self.value()
        return queryset if value is None else queryset.filter(**{self.field: value})


class ModelFilter(DimensionFilter):
    title = "model"
    parameter_name = field = "model"


class ApplicationFilter(DimensionFilter):
    title = "application"
    parameter_name = field = "application_id"


class UserFilter(admin.SimpleListFilter):
    """Shown only when active (there may be thousands of users): the dashboard's drill-down sets it."""

    title = "user"
    parameter_name = "user_id"

    def lookups(self, request, model_admin):  # type: ignore[no-untyped-def]
        value = self.value()
        return [(value, value or "(none)")] if value is not None else []

    def queryset(self, request, queryset):  # type: ignore[no-untyped-def]
        value = self.value()
        return queryset if value is None else queryset.filter(user_id=value)


class RequestChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):  # type: ignore[no-untyped-def]
        # The list never shows prompts or answers: leave those columns in the table.
        return super().get_queryset(request, exclude_parameters).defer("messages", "response", "metadata")


# Query parameters the totals can take from the rollups; anything else (a search, say) sums the rows.
ROLLUP_PARAMS = {"status__exact", "model", "application_id", "user_id", "created_at__gte", "created_at__lt"}
HIERARCHY = ("created_at__year", "created_at__month", "created_at__day")
IGNORED_PARAMS = {"o", "p", "e", "_changelist_filters"}


@admin.register(Request)
class RequestAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "user_id",
        "application_id",
        "model",
        "status_label",
        "total_tokens",
        "cost",
        "latency_ms",
        "key",
    ]
    list_display_links = ["created_at"]
    list_filter = ["status", ModelFilter, ApplicationFilter, UserFilter, ("created_at", admin.DateFieldListFilter)]
    search_fields = ["user_id", "application_id", "response"]  # the search itself is get_search_results
    search_help_text = "A request id, a user or application id (exact), or words from the messages, answer or error."
    date_hierarchy = "created_at"
    list_select_related = ["key"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    actions = None
    ordering = ["-created_at"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "created_at",
                    "status_label",
                    ("application_id", "user_id", "key"),
                    ("endpoint", "streamed", "cache_hit"),
                    ("model", "provider", "resolved_model"),
                ]
            },
        ),
        ("Messages", {"fields": ["messages_view"]}),
        ("Answer", {"fields": ["response_view"]}),
        ("Usage", {"fields": ["usage_view", ("cost", "latency_ms", "ttft_ms")]}),
        ("Error", {"fields": [("error_type", "http_status"), "error_message"]}),
        ("Metadata", {"fields": ["metadata_view"], "classes": ["collapse"]}),
    ]
    readonly_fields = [
        "id",
        "created_at",
        "status_label",
        "application_id",
        "user_id",
        "key",
        "endpoint",
        "streamed",
        "cache_hit",
        "model",
        "provider",
        "resolved_model",
        "messages_view",
        "response_view",
        "usage_view",
        "cost",
        "latency_ms",
        "ttft_ms",
        "error_type",
        "http_status",
        "error_message",
        "metadata_view",
    ]

    # --- Read-only: the table is the record of what was sent, for everyone ---------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Request | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Request | None = None) -> bool:
        # Retention is prune_requests' job; a deployment may let superusers delete by setting this to True.
        allowed = getattr(settings, "USAGE_ADMIN_ALLOW_DELETE", False)
        return bool(allowed and request.user.is_superuser)

    def delete_model(self, request: HttpRequest, obj: Request) -> None:
        super().delete_model(request, obj)
        from usage.rollups import local_date, rollup_mark_dirty

        rollup_mark_dirty([local_date(obj.created_at)])

    # --- The list -----------------------------------------------------------------------------------

    def get_changelist(self, request: HttpRequest, **kwargs) -> type[ChangeList]:
        return RequestChangeList

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):  # type: ignore[no-untyped-def]
        try:
            page = int(request.GET.get("p", 1))
        except ValueError:
            page = 1
        return CountlessPaginator(queryset, per_page, orphans=orphans, page_number=page)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):  # type: ignore[no-untyped-def]
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(id=uuid.UUID(term)), False
        except ValueError:
            pass
        # A user or application id uses its index; only other words scan the text columns.
        exact = Q(user_id=term) | Q(application_id=term)
        if Request.objects.filter(exact).exists():
            return queryset.filter(exact), False
        words = Q(response__icontains=term) | Q(error_message__icontains=term) | Q(messages__icontains=term)
        return queryset.filter(words), False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):  # type: ignore[no-untyped-def]
        query = request.GET.urlencode()
        extra_context = {
            **(extra_context or {}),
            "export_url": reverse("admin:chat_request_export") + (f"?{query}" if query else ""),
            "dashboard_url": reverse("admin:usage_dashboard"),
        }
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            context["totals"] = self.totals(request, context["cl"])
        return response

    def totals(self, request: HttpRequest, cl: ChangeList) -> dict:
        """Figures of the whole filtered list: from the rollups when the filters allow, else summed from rows."""
        f = self._usage_filter(request)
        if f is not None:
            figures = selectors.usage_totals(f)
        else:
            figures = selectors.figures_of(cl.queryset)
        return {
            "requests": f"{figures.requests:,}",
            "tokens": f"{figures.total_tokens:,}",
            "cost_usd": money(figures.cost_usd),
            "avg_latency_ms": figures.avg_latency_ms,
            "error_rate": f"{figures.error_rate:.1%}",
        }

    def _usage_filter(self, request: HttpRequest) -> selectors.UsageFilter | None:
        params = {k: v for k, v in request.GET.items() if k not in IGNORED_PARAMS}
        if set(params) - ROLLUP_PARAMS - set(HIERARCHY):
            return None
        zone = timezone.get_default_timezone()
        since = datetime(2000, 1, 1, tzinfo=zone)
        until = timezone.now() + timedelta(days=1)
        try:
            if "created_at__gte" in params:
                since = parse_moment(params["created_at__gte"], zone=zone, param="since")
            if "created_at__lt" in params:
                until = parse_moment(params["created_at__lt"], zone=zone, param="until")
            hierarchy = [int(params[name]) for name in HIERARCHY if name in params]
        except (PeriodError, ValueError):
            return None
        if hierarchy:
            start, end = _hierarchy_range(hierarchy)
            since, until = max(since, local_start(start, zone)), min(until, local_start(end, zone))
        return selectors.usage_filter(
            since=since,
            until=max(since, until),
            status=params.get("status__exact"),
            model=params.get("model"),
            application_id=params.get("application_id"),
            user_id=params.get("user_id"),
        )

    # --- Columns and the detail page -------------------------------------------------------------

    @admin.display(description="status", ordering="status")
    def status_label(self, obj: Request) -> str:
        colour = {"success": "#2e7d32", "error": "#c62828", "cancelled": "#8d6e00"}.get(obj.status, "inherit")
        return format_html('<strong style="color:{}">{}</strong>', colour, obj.status)

    @admin.display(description="cost (USD)", ordering="cost_usd")
    def cost(self, obj: Request) -> str:
        return money(obj.cost_usd)

    @admin.display(description="messages")
    def messages_view(self, obj: Request) -> str:
        if not obj.messages:
            return "(not stored)"
        items = obj.messages if isinstance(obj.messages, list) else [obj.messages]
        return format_html_join(
            "",
            '<div class="usage-message"><strong>{}</strong><pre>{}</pre></div>',
            ((_role(m), _content(m)) for m in items),
        )

    @admin.display(description="answer")
    def response_view(self, obj: Request) -> str:
        return format_html("<pre>{}</pre>", obj.response) if obj.response else "(none)"

    @admin.display(description="tokens")
    def usage_view(self, obj: Request) -> str:
        return format_html(
            "prompt {} · completion {} · total {} · cached {} · reasoning {}",
            obj.prompt_tokens,
            obj.completion_tokens,
            obj.total_tokens,
            obj.cached_tokens,
            obj.reasoning_tokens,
        )

    @admin.display(description="metadata")
    def metadata_view(self, obj: Request) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.metadata, indent=2, ensure_ascii=False))

    # --- Export and dashboard --------------------------------------------------------------------

    def get_urls(self):  # type: ignore[no-untyped-def]
        view = self.admin_site.admin_view
        return [
            path("export/", view(self.export_view), name="chat_request_export"),
            path("dashboard/", view(self.dashboard_view), name="usage_dashboard"),
            *super().get_urls(),
        ]

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """The list as it is filtered and searched, as a CSV file streamed row chunk by row chunk."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        cl = self.get_changelist_instance(request)
        rows = cl.get_queryset(request).order_by("created_at", "id")
        response = StreamingHttpResponse(export_rows(rows, fmt="csv"), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{export_filename("csv", timezone.now())}"'
        return response

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Usage dashboard",
            "opts": self.opts,
            **dashboard.dashboard_context(request.GET, changelist=reverse("admin:chat_request_changelist")),
        }
        return TemplateResponse(request, "admin/usage/dashboard.html", context)


def _hierarchy_range(parts: list[int]):  # type: ignore[no-untyped-def]
    """The local days [start, end) of a date-hierarchy year, month or day."""
    from datetime import date

    if len(parts) == 1:
        return date(parts[0], 1, 1), date(parts[0] + 1, 1, 1)
    if len(parts) == 2:
        start = date(parts[0], parts[1], 1)
        return start, (start + timedelta(days=32)).replace(day=1)
    start = date(*parts[:3])
    return start, start + timedelta(days=1)


def _role(message: object) -> str:
    return str(message.get("role", "")) if isinstance(message, dict) else ""


def _content(message: object) -> str:
    content = message.get("content") if isinstance(message, dict) else message
    if isinstance(content, str):
        return content
    return json.dumps(content, indent=2, ensure_ascii=False)
