"""Prepares a local gateway for its first call: an application, a key and a staff login."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from chat.catalog import default_model
from chat.models import Application
from chat.services.keys import caller_from_key, key_create

CREDENTIALS = Path(settings.BASE_DIR) / ".dev-key"


class Command(BaseCommand):
    help = "Create (once) a local application, a gateway key and an admin login, and print how to use them."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, port: int, **options) -> None:  # type: ignore[no-untyped-def]
        saved = json.loads(CREDENTIALS.read_text()) if CREDENTIALS.exists() else {}
        if not saved.get("key") or caller_from_key(saved["key"]) is None:
            app, _ = Application.objects.get_or_create(name="local", defaults={"description": "Local development"})
            _, saved["key"] = key_create(application=app, name="make run")
        users = get_user_model().objects
        if not saved.get("password") or not users.filter(username="admin").exists():
            saved["password"] = secrets.token_urlsafe(12)
            admin = users.filter(username="admin").first() or users.create_superuser("admin", "admin@localhost")
            admin.set_password(saved["password"])
            admin.save()
        CREDENTIALS.write_text(json.dumps(saved))
        os.chmod(CREDENTIALS, 0o600)
        base = f"http://127.0.0.1:{port}"
        model = default_model()
        self.stdout.write(
            f"\nGateway key (local application): {saved['key']}\n"
            f"Admin and chat page login:       admin / {saved['password']}   ({base}/admin/)\n"
            f"Kept in {CREDENTIALS.name} (git-ignored). Try:\n\n"
            f"  curl -X POST {base}/api/chat -H 'Authorization: Bearer {saved['key']}' \\\n"
            f'       -H \'Content-Type: application/json\' -d \'{{"query":"Hello","model":"{model}"}}\'\n\n'
        )
