"""Gateway keys: creation, revocation and lookup by hash."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from chat.models import ApiKey, Application, Period

KEY_PREFIX = "gw_"
# Anything else in an Authorization header is refused before the database is asked.
KEY_FORMAT = re.compile(r"gw_[A-Za-z0-9_-]{20,100}")  # matched whole, with fullmatch
CACHE_SECONDS = 10.0
CACHE_MAX_ENTRIES = 10_000  # unknown keys are cached too: whoever sprays guesses must not grow it without end
LAST_USED_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's snapshot, or an anonymous/browser caller with no key."""

    application_id: str = ""
    user_id: str = ""
    key_id: int | None = None
    key_prefix: str = ""
    user_pinned: bool = False
    rpm: int | None = None
    tpm: int | None = None
    key_budget_usd: Decimal | None = None
    key_budget_period: str = "month"
    app_budget_usd: Decimal | None = None
    app_budget_period: str = "month"
    expires_at: datetime | None = None

    def for_user(self, user_id: str | None) -> Caller:
        """The same caller acting for `user_id`, unless the key pins its user."""
        if self.user_pinned or not user_id:
            return self
        return Caller(**{**self.__dict__, "user_id": user_id})


@sensitive_variables("raw")
def key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@sensitive_variables("raw")
def key_create(
    *,
    application: Application,
    name: str = "",
    user_id: str = "",
    expires_at: datetime | None = None,
    budget_usd: Decimal | None = None,
    budget_period: str = "month",
    rpm: int | None = None,
    tpm: int | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plain text, which is never stored and shown only now."""
    if budget_period not in Period.values:
        raise ValueError(f"budget_period must be one of {', '.join(Period.values)}")
    if budget_usd is not None and budget_usd < 0:
        raise ValueError("budget_usd must not be negative")
    key = ApiKey(
        application=application,
        name=name,
        user_id=user_id,
        expires_at=expires_at,
        budget_usd=budget_usd,
        budget_period=budget_period,
        rpm=rpm,
        tpm=tpm,
    )
    raw = key_issue(key=key)
    return key, raw


@sensitive_variables("raw")
def key_issue(*, key: ApiKey) -> str:
    """Give an unsaved key its secret, save it, and return the plain text (the admin's add form uses this)."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key.prefix = raw[:11]
    key.hashed = key_hash(raw)
    key.save(force_insert=True)
    return raw


def key_revoke(*, key: ApiKey) -> ApiKey:
    """Refuse the key from now on (in other processes within CACHE_SECONDS)."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    key_forget(key=key)
    return key


def key_forget(*, key: ApiKey) -> None:
    """Drop this process's cached snapshot of a key, after its limits or status changed."""
    _cache.pop(key.hashed, None)


# hash -> (expires at, Caller or None); per process, so a revocation reaches other processes within CACHE_SECONDS.
_cache: dict[str, tuple[float, Caller | None]] = {}
_last_used_written: dict[int, float] = {}


def caller_cache_clear() -> None:
    _cache.clear()
    _last_used_written.clear()


@sensitive_variables("raw")
async def acaller_from_key(raw: str) -> Caller | None:
    """`caller_from_key` for async code: no thread is used while the key's snapshot is cached."""
    if not KEY_FORMAT.fullmatch(raw):
        return None
    digest = key_hash(raw)
    hit = _cache.get(digest)
    now = time.monotonic()
    if hit and hit[0] > now:
        caller = hit[1]
        if caller is None or not _touch_due(caller.key_id, now):
            return _valid(caller)
    from chat.db import run_db

    # Only the hash goes to the thread: its frames never hold the key (error reports show their variables).
    return await run_db(caller_from_hash, digest)


def _valid(caller: Caller | None) -> Caller | None:
    if caller is None or (caller.expires_at and caller.expires_at <= timezone.now()):
        return None
    return caller


@sensitive_variables("raw")
def caller_from_key(raw: str) -> Caller | None:
    """The caller a usable key stands for, or None. Uses the ORM: call from a thread."""
    if not KEY_FORMAT.fullmatch(raw):
        return None
    return caller_from_hash(key_hash(raw))


def caller_from_hash(digest: str) -> Caller | None:
    """The caller of the usable key with this SHA-256, or None; cached per process for CACHE_SECONDS."""
    now = time.monotonic()
    hit = _cache.get(digest)
    if hit and hit[0] > now:
        caller = hit[1]
    else:
        key = ApiKey.objects.select_related("application").filter(hashed=digest).first()
        caller = _snapshot(key) if key and key.revoked_at is None and key.application.is_active else None
        if len(_cache) >= CACHE_MAX_ENTRIES:
            _cache.clear()
        _cache[digest] = (now + CACHE_SECONDS, caller)
    if _valid(caller) is None:
        return None
    _touch(caller.key_id, now)
    return caller


def _snapshot(key: ApiKey) -> Caller:
    app = key.application
    return Caller(
        application_id=app.name,
        user_id=key.user_id,
        key_id=key.id,
        key_prefix=key.prefix,
        user_pinned=bool(key.user_id),
        rpm=key.rpm,
        tpm=key.tpm,
        key_budget_usd=key.budget_usd,
        key_budget_period=key.budget_period,
        app_budget_usd=app.budget_usd,
        app_budget_period=app.budget_period,
        expires_at=key.expires_at,
    )


def _touch_due(key_id: int | None, now: float) -> bool:
    return key_id is not None and now - _last_used_written.get(key_id, -1e9) >= LAST_USED_EVERY_SECONDS


def _touch(key_id: int | None, now: float) -> None:
    # last_used_at is written at most once a minute per key and process, not on every call.
    if not _touch_due(key_id, now):
        return
    _last_used_written[key_id] = now
    ApiKey.objects.filter(pk=key_id).update(last_used_at=timezone.now())
