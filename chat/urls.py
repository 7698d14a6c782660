from __future__ import annotations

from django.urls import path

from chat import pages, views
from chat import views_openai as openai_api

urlpatterns = [
    path("", pages.chat_page, name="chat-page"),
    path("login", pages.login_page, name="login"),
    path("logout", pages.logout_page, name="logout"),
    path("api/chat", views.ApiChatView.as_view(), name="api-chat"),
    path("api/models", views.ModelsView.as_view(), name="api-models"),
    path("llm/simple", views.SimpleView.as_view(), name="llm-simple"),
    path("llm/chat", views.LlmChatView.as_view(), name="llm-chat"),
    path("health", views.HealthView.as_view(), name="health"),
    path("v1/chat/completions", openai_api.ChatCompletionsView.as_view(), name="v1-chat-completions"),
    path("v1/embeddings", openai_api.EmbeddingsView.as_view(), name="v1-embeddings"),
    path("v1/models", openai_api.ModelListView.as_view(), name="v1-models"),
    path("v1/models/<path:model>", openai_api.ModelDetailView.as_view(), name="v1-model"),
]
