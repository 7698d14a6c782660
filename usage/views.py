"""`/api/user/{user_id}/usage` and `/api/stats`: usage figures for keys, staff and signed-in people."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from chat.schema import errors
from usage import selectors
from usage.access import usage_scope
from usage.serializers import (
    StatsInput,
    UserUsageInput,
    group_body,
    period_body,
    query_params,
    request_body,
    series_body,
    summary_body,
)


class UserUsageView(APIView):
    """One user's figures over a period: summary, by application, by model, per day, and a page of requests."""

    @extend_schema(
        parameters=[UserUsageInput],
        responses={200: OpenApiResponse(description="The user's usage figures"), **errors(400, 401, 403)},
        summary="One user's usage",
    )
    def get(self, request, user_id: str):  # type: ignore[no-untyped-def]
        data = query_params(UserUsageInput, request.query_params)
        scope = usage_scope(request).narrow(application_id=data.get("application_id"), user_id=user_id)
        f = selectors.usage_filter(since=data["since"], until=data["until"], model=data.get("model"), **scope)
        by_application = selectors.usage_by(f, "application_id")
        by_model = selectors.usage_by(f, "model")
        overall = selectors.usage_percentiles(f).get(None, {})
        rows, has_next = selectors.requests_page(f, page=data["page"], page_size=data["page_size"])
        return Response(
            {
                "user_id": user_id,
                "period": period_body(data),
                "filters": {"model": f.model, "application_id": f.application_id},
                "summary": summary_body(
                    selectors.usage_totals(f),
                    apps_used=len(by_application),
                    models_used=len(by_model),
                    p50_latency_ms=overall.get(0.5),
                    p95_latency_ms=overall.get(0.95),
                ),
                "usage_by_application": [group_body("application_id", k, v) for k, v in by_application],
                "usage_by_model": [group_body("model", k, v) for k, v in by_model],
                "series": series_body(selectors.usage_series(f, interval=data["interval"])),
                "recent_requests": [request_body(row) for row in rows],
                "pagination": {"page": data["page"], "page_size": data["page_size"], "has_next": has_next},
            }
        )


class StatsView(APIView):
    """Figures across all users (a key: its own application's): by model with percentiles, by application, top users."""

    @extend_schema(
        parameters=[StatsInput],
        responses={200: OpenApiResponse(description="Usage figures across users"), **errors(400, 401, 403)},
        summary="Usage across all users",
    )
    def get(self, request):  # type: ignore[no-untyped-def]
        data = query_params(StatsInput, request.query_params)
        scope = usage_scope(request, keys_only=True).narrow(application_id=data.get("application_id"))
        f = selectors.usage_filter(since=data["since"], until=data["until"], model=data.get("model"), **scope)
        by_application = selectors.usage_by(f, "application_id")
        by_model = selectors.usage_by(f, "model")
        # Per model only: a percentile over every model's rows would cost more than the rest together.
        percentiles = selectors.usage_percentiles(f, by="model")
        users = selectors.usage_by(f, "user_id")
        return Response(
            {
                "period": period_body(data),
                "filters": {"model": f.model, "application_id": f.application_id},
                "summary": summary_body(
                    selectors.usage_totals(f),
                    apps_used=len(by_application),
                    models_used=len(by_model),
                    users=len(users),
                ),
                "usage_by_application": [group_body("application_id", k, v) for k, v in by_application],
                "usage_by_model": [group_body("model", k, v, percentiles.get(k, {})) for k, v in by_model],
                "top_users": [group_body("user_id", k, v) for k, v in users[: data["top"]]],
                "series": series_body(selectors.usage_series(f, interval=data["interval"])),
            }
        )
