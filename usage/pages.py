"""The `/usage` page: the signed-in person's own usage; staff may look at anyone's, or everyone's."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from chat.pages import LOGIN_URL, page


@page
@login_required(login_url=LOGIN_URL)
def usage_page(request: HttpRequest) -> HttpResponse:
    """Cards, charts over time, breakdowns by application and model, and recent requests."""
    return render(request, "usage/index.html", {"page": "usage"})
