"""Rollups of `chat.Request`: per local day × application × user × model × status, kept exact.

Raw aggregates over a month of a busy table are too slow for pages that must answer in
milliseconds, so days are summed once (zulip's analytics keeps count tables the same way).
A day is rolled once it has ended in `TIME_ZONE` (plus a settling delay for calls that were
still running), and today is rolled up to a few minutes ago; rows that arrive for an already
rolled day mark it dirty and it is rolled again before the next read. Money is kept as an
integer of 1e-10 USD, the precision of `Request.cost_usd`, so sums are exact on every database
(SQLite stores decimals as floats).
"""

from __future__ import annotations

from django.db import models


class UsageFigures(models.Model):
    """The summed columns every rollup carries."""

    requests = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost_units = models.BigIntegerField(default=0, help_text="Cost in units of 1e-10 USD.")
    latency_ms_sum = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class UserDay(UsageFigures):
    """One local day of one user's calls to one model through one application, by status."""

    day = models.DateField()
    application_id = models.CharField(max_length=100, blank=True, default="")
    user_id = models.CharField(max_length=100, blank=True, default="")
    model = models.CharField(max_length=100)
    status = models.CharField(max_length=10)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "application_id", "user_id", "model", "status"], name="userday_unique"
            )
        ]
        indexes = [
            models.Index(fields=["user_id", "day"], name="userday_user"),
            models.Index(fields=["application_id", "day"], name="userday_app"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.application_id}/{self.user_id} {self.model} {self.status}"


class ModelDay(UsageFigures):
    """One local day of one application's calls to one model, by status: `UserDay` without the user."""

    day = models.DateField()
    application_id = models.CharField(max_length=100, blank=True, default="")
    model = models.CharField(max_length=100)
    status = models.CharField(max_length=10)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "application_id", "model", "status"], name="modelday_unique")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.application_id} {self.model} {self.status}"


class LatencyDay(models.Model):
    """How many of one local day's calls of one application to one model fell in each latency bucket.

    Exact counts per bucket (`usage.periods.LATENCY_BOUNDS`) tell which few rows hold a percentile,
    so the percentile query sorts one bucket's rows instead of the whole period's.
    """

    day = models.DateField()
    application_id = models.CharField(max_length=100, blank=True, default="")
    model = models.CharField(max_length=100)
    bucket = models.PositiveSmallIntegerField()
    requests = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "application_id", "model", "bucket"], name="latencyday_unique")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.application_id} {self.model} #{self.bucket}"


class RollupState(models.Model):
    """How far the rollups reach: every local day before `rolled_until` whole, that day up to `partial_until`."""

    time_zone = models.CharField(max_length=64)
    rolled_until = models.DateField(null=True)
    partial_until = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(auto_now=True)

    rolled_days = 0  # how many whole days the last refresh rolled (not stored)

    def __str__(self) -> str:
        return f"rolled until {self.rolled_until} ({self.time_zone})"


class DirtyDay(models.Model):
    """A rolled day whose rows changed (a late row, an import, a deletion): rolled again before the next read."""

    day = models.DateField(unique=True)

    def __str__(self) -> str:
        return str(self.day)
