"""The gateway's tables: applications, their keys, and one Request row per provider call."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Period(models.TextChoices):
    DAY = "day", "per day"
    MONTH = "month", "per month"
    TOTAL = "total", "in total"


class Application(models.Model):
    """A calling application; its `name` is the `application_id` clients and reports use."""

    name = models.SlugField(max_length=100, unique=True)
    description = models.CharField(max_length=255, blank=True)
    budget_usd = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    budget_period = models.CharField(max_length=8, choices=Period.choices, default=Period.MONTH)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """A gateway key: only its SHA-256 and a short readable prefix are kept."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="keys")
    name = models.CharField(max_length=100, blank=True)
    user_id = models.CharField(max_length=100, blank=True, help_text="Pins every call to this user.")
    prefix = models.CharField(max_length=16, db_index=True, editable=False)
    hashed = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    budget_usd = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    budget_period = models.CharField(max_length=8, choices=Period.choices, default=Period.MONTH)
    rpm = models.PositiveIntegerField(null=True, blank=True, help_text="Requests per minute.")
    tpm = models.PositiveIntegerField(null=True, blank=True, help_text="Tokens per minute.")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.application.name})"

    @property
    def is_usable(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class UserBudget(models.Model):
    """A spending limit for one end user, across every application."""

    user_id = models.CharField(max_length=100, unique=True)
    budget_usd = models.DecimalField(max_digits=14, decimal_places=4)
    budget_period = models.CharField(max_length=8, choices=Period.choices, default=Period.MONTH)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.budget_usd} USD {self.get_budget_period_display()}"


class Request(models.Model):
    """One call sent on to a provider, successful or not."""

    class Status(models.TextChoices):
        SUCCESS = "success"
        ERROR = "error"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    application_id = models.CharField(max_length=100, blank=True, default="")
    user_id = models.CharField(max_length=100, blank=True, default="")
    key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    endpoint = models.CharField(max_length=40)
    model = models.CharField(max_length=100, help_text="The model the caller asked for.")
    provider = models.CharField(max_length=40, blank=True)
    resolved_model = models.CharField(max_length=200, blank=True, help_text="What litellm called.")
    messages = models.JSONField(null=True, blank=True)
    response = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    http_status = models.PositiveSmallIntegerField(default=200)
    error_type = models.CharField(max_length=60, blank=True)
    error_message = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=16, decimal_places=10, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Time to first token.")
    streamed = models.BooleanField(default=False)
    cache_hit = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_at"], name="request_created"),
            models.Index(fields=["user_id", "created_at"], name="request_user_time"),
            models.Index(fields=["application_id", "created_at"], name="request_app_time"),
            models.Index(fields=["model", "created_at"], name="request_model_time"),
            models.Index(fields=["key", "created_at"], name="request_key_time"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.model} {self.status}"
