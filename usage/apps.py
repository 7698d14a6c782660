from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_save


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage"

    def ready(self) -> None:
        from chat.models import Request
        from usage.rollups import mark_late_row

        # The write side never imports usage: the read side listens for late rows instead.
        post_save.connect(mark_late_row, sender=Request, dispatch_uid="usage-mark-late-row")
