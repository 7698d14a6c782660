"""Issue a gateway key from the command line; the key is printed once and stored only hashed."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from chat.models import Application, Period
from chat.services.keys import key_create


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise CommandError(f"'{text}' is not a whole number above zero.")
    return value


def _budget(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CommandError(f"--budget '{text}' is not an amount in USD, e.g. 25 or 0.50.") from None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.0001")) or value >= 10**10:
        raise CommandError(f"--budget '{text}' must be above 0 and below 10 billion, with at most 4 decimals.")
    return value


def _expiry(text: str) -> datetime:
    """`30d` (days from now), a date (the end of that day) or an ISO date and time."""
    if text.endswith("d") and text[:-1].isdigit():
        return timezone.now() + timedelta(days=int(text[:-1]))
    try:
        day = parse_date(text) if len(text) == 10 else None
        moment = datetime.combine(day + timedelta(days=1), time.min) if day else parse_datetime(text)
    except ValueError:  # well formed but impossible, like 2026-02-30
        moment = None
    if moment is None:
        raise CommandError(f"--expires '{text}' is not a date (2026-12-31), a date and time, or days (30d).")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    if moment <= timezone.now():
        raise CommandError(f"--expires '{text}' is in the past.")
    return moment


class Command(BaseCommand):
    help = "Create a gateway key for an application and print it once (it is stored only hashed)."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--app", required=True, help="The application (its name, the application_id).")
        parser.add_argument("--create-app", action="store_true", help="Create the application if it does not exist.")
        parser.add_argument("--user", default="", help="Pin every call of this key to this user id.")
        parser.add_argument("--name", default="", help="A label for the key, e.g. who or what uses it.")
        parser.add_argument("--budget", help="Spending limit of the key in USD.")
        parser.add_argument("--period", choices=Period.values, help="Budget period (default: month).")
        parser.add_argument("--rpm", help="Requests per minute.")
        parser.add_argument("--tpm", help="Tokens per minute.")
        parser.add_argument("--expires", help="Expiry: 30d, 2026-12-31 or 2026-12-31T18:00:00Z. Never by default.")
        parser.add_argument("--quiet", action="store_true", help="Print only the key, for scripts.")

    def handle(self, *args, **opts) -> None:  # type: ignore[no-untyped-def]
        if opts["period"] and not opts["budget"]:
            raise CommandError("--period needs --budget.")
        budget = _budget(opts["budget"]) if opts["budget"] else None
        rpm = _positive_int(opts["rpm"]) if opts["rpm"] else None
        tpm = _positive_int(opts["tpm"]) if opts["tpm"] else None
        expires_at = _expiry(opts["expires"]) if opts["expires"] else None
        if len(opts["user"]) > 100 or len(opts["name"]) > 100:
            raise CommandError("--user and --name are at most 100 characters.")
        app = Application.objects.filter(name=opts["app"]).first()
        if app is None:
            if not opts["create_app"]:
                known = ", ".join(Application.objects.values_list("name", flat=True)[:20]) or "none yet"
                raise CommandError(f"No application '{opts['app']}' (known: {known}). Add --create-app to create it.")
            app = Application(name=opts["app"])
            try:
                app.full_clean()
            except Exception as exc:  # noqa: BLE001 - a ValidationError names what is wrong with the name
                raise CommandError(f"Cannot create application '{opts['app']}': {exc}") from None
            app.save()
            if not opts["quiet"]:
                self.stdout.write(f"Created application '{app.name}'.")
        elif not app.is_active:
            raise CommandError(f"Application '{app.name}' is inactive: its keys are refused. Activate it first.")
        key, raw = key_create(
            application=app,
            name=opts["name"],
            user_id=opts["user"],
            expires_at=expires_at,
            budget_usd=budget,
            budget_period=opts["period"] or Period.MONTH,
            rpm=rpm,
            tpm=tpm,
        )
        if opts["quiet"]:
            self.stdout.write(raw)
            return
        limits = [
            f"user {key.user_id}" if key.user_id else "",
            f"budget {budget} USD {Period(key.budget_period).label}" if budget is not None else "",
            f"{rpm} requests/min" if rpm else "",
            f"{tpm} tokens/min" if tpm else "",
            f"expires {expires_at.isoformat()}" if expires_at else "",
        ]
        details = ", ".join(part for part in limits if part) or "no limits"
        self.stdout.write(
            f"Key {key.prefix}… for application '{app.name}' ({details}).\n"
            "Copy it now, it is stored hashed and will not be shown again:\n\n"
            f"{raw}\n"
        )
