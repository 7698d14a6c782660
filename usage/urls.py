from __future__ import annotations

from django.urls import path

from usage import pages, views

urlpatterns = [
    path("usage", pages.usage_page, name="usage-page"),
    path("api/user/<str:user_id>/usage", views.UserUsageView.as_view(), name="api-user-usage"),
    path("api/stats", views.StatsView.as_view(), name="api-stats"),
]
