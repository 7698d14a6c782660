from __future__ import annotations

from django.urls import path

from usage import pages

urlpatterns = [
    path("usage", pages.usage_page, name="usage-page"),
]
