"""Staff pages for applications, their gateway keys and user budgets (requests: usage/admin.py)."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from chat.models import ApiKey, Application, UserBudget
from chat.services.keys import key_forget, key_issue, key_revoke


def _spent(scope: str, ident: str, budget_usd: Decimal | None, period: str) -> str:
    """`spent / budget` of the current window, from the rows; "—" without a budget."""
    if budget_usd is None:
        return "—"
    # Imported here: chat.limits loads litellm, which every manage.py command would otherwise pay for at start.
    from chat.limits import Budget, spend_usd

    budget = Budget(scope, ident, "", budget_usd, period)
    spent = spend_usd(scope=scope, ident=ident, since=budget.window(timezone.now())[1])
    return f"{spent.normalize():f} / {budget_usd.normalize():f} USD"


class ApiKeyInline(admin.TabularInline):
    """The application's keys, read-only: keys are issued from their own add page, which shows the secret once."""

    model = ApiKey
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("prefix", "name", "user_id", "expires_at", "revoked_at", "last_used_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "is_active", "budget", "active_keys", "created_at")
    list_filter = ("is_active", "budget_period")
    search_fields = ("name", "description")
    readonly_fields = ("created_at", "spent_this_period")
    fields = ("name", "description", "is_active", "budget_usd", "budget_period", "spent_this_period", "created_at")
    inlines = [ApiKeyInline]

    def get_queryset(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        usable = Q(keys__revoked_at__isnull=True) & (
            Q(keys__expires_at__isnull=True) | Q(keys__expires_at__gt=timezone.now())
        )
        return super().get_queryset(request).annotate(active_key_count=Count("keys", filter=usable))

    @admin.display(description="Active keys", ordering="active_key_count")
    def active_keys(self, obj: Application) -> int:
        return obj.active_key_count

    @admin.display(description="Budget")
    def budget(self, obj: Application) -> str:
        return _spent("application", obj.name, obj.budget_usd, obj.budget_period)

    @admin.display(description="Spent this period")
    def spent_this_period(self, obj: Application) -> str:
        return _spent("application", obj.name, obj.budget_usd, obj.budget_period) if obj.pk else "—"


class KeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):  # type: ignore[no-untyped-def]
        return [("active", "Active"), ("revoked", "Revoked"), ("expired", "Expired")]

    def queryset(self, request, queryset):  # type: ignore[no-untyped-def]
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True).exclude(expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are stored hashed: the add page shows the new key once, and nothing shows it again."""

    list_display = (
        "key",
        "name",
        "application",
        "user_id",
        "status",
        "budget",
        "rpm",
        "tpm",
        "last_used_at",
        "created_at",
    )
    list_filter = (KeyStatusFilter, "application", "budget_period")
    list_select_related = ("application",)
    search_fields = ("prefix", "name", "user_id", "application__name")
    date_hierarchy = "created_at"
    actions = ["revoke"]
    fieldsets = (
        (None, {"fields": ("application", "name", "user_id", "expires_at")}),
        ("Limits", {"fields": ("budget_usd", "budget_period", "rpm", "tpm")}),
        ("Status", {"fields": ("prefix", "status", "spent_this_period", "created_at", "last_used_at", "revoked_at")}),
    )
    readonly_fields = ("prefix", "status", "spent_this_period", "created_at", "last_used_at", "revoked_at")

    def get_fieldsets(self, request: HttpRequest, obj: ApiKey | None = None):  # type: ignore[no-untyped-def]
        return self.fieldsets if obj else self.fieldsets[:2]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None):  # type: ignore[no-untyped-def]
        # The application a key belongs to never changes: its rows and budgets are counted by it.
        return (*self.readonly_fields, "application") if obj else self.readonly_fields

    @admin.display(description="Key", ordering="prefix")
    def key(self, obj: ApiKey) -> str:
        return f"{obj.prefix}…"

    @admin.display(description="Status")
    def status(self, obj: ApiKey) -> str:
        if obj.revoked_at is not None:
            return format_html('<span style="color:#ba2121">revoked {}</span>', obj.revoked_at.date())
        if obj.expires_at is not None and obj.expires_at <= timezone.now():
            return format_html('<span style="color:#ba2121">expired {}</span>', obj.expires_at.date())
        return "active"

    @admin.display(description="Budget")
    def budget(self, obj: ApiKey) -> str:
        return _spent("key", str(obj.pk), obj.budget_usd, obj.budget_period)

    @admin.display(description="Spent this period")
    def spent_this_period(self, obj: ApiKey) -> str:
        return self.budget(obj)

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:  # type: ignore[no-untyped-def]
        if change:
            super().save_model(request, obj, form, change)
            key_forget(key=obj)
            return
        # Shown on the very next page and kept nowhere: not in a message, the session or a log.
        request._gateway_new_key = key_issue(key=obj)  # type: ignore[attr-defined]

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None) -> HttpResponse:
        raw = getattr(request, "_gateway_new_key", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Copy the new key now",
            "key": obj,
            "raw": raw,
        }
        response = TemplateResponse(request, "admin/chat/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset) -> None:  # type: ignore[no-untyped-def]
        count = 0
        for key in queryset.filter(revoked_at__isnull=True):
            key_revoke(key=key)
            count += 1
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


@admin.register(UserBudget)
class UserBudgetAdmin(admin.ModelAdmin):
    list_display = ("user_id", "budget_usd", "budget_period", "spent_this_period")
    list_filter = ("budget_period",)
    search_fields = ("user_id",)

    @admin.display(description="Spent this period")
    def spent_this_period(self, obj: UserBudget) -> str:
        return _spent("user", obj.user_id, obj.budget_usd, obj.budget_period)
