from __future__ import annotations

from django.urls import path

from chat import views

urlpatterns = [
    path("api/chat", views.ApiChatView.as_view(), name="api-chat"),
    path("api/models", views.ModelsView.as_view(), name="api-models"),
    path("llm/simple", views.SimpleView.as_view(), name="llm-simple"),
    path("llm/chat", views.LlmChatView.as_view(), name="llm-chat"),
    path("health", views.HealthView.as_view(), name="health"),
]
