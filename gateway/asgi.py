"""ASGI entry point: `uvicorn gateway.asgi:application`."""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
django.setup(set_prefix=False)  # as get_asgi_application() does, then Django's handler with pooled threads

from gateway.middleware import GatewayASGIHandler  # noqa: E402

application = GatewayASGIHandler()
