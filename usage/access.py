"""Who may see which usage: staff see everything, keys their own application, a pinned user only themselves."""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework.request import Request as ApiRequest

from chat.errors import Forbidden
from chat.services.keys import Caller

WEB_APPLICATION = "web"  # what chat.auth records for calls made from a signed-in browser session


@dataclass(frozen=True)
class Scope:
    """The rows a caller may see: None means any."""

    application_id: str | None = None
    user_id: str | None = None

    def narrow(self, *, application_id: str | None = None, user_id: str | None = None) -> dict[str, str | None]:
        """The filters for a request: the caller's own limits, or 403 when the request asks beyond them."""
        if self.user_id is not None and user_id is not None and user_id != self.user_id:
            raise Forbidden("This key may only see its own user's usage.", param="user_id")
        if self.application_id is not None and application_id and application_id != self.application_id:
            raise Forbidden("This key may only see its own application's usage.", param="application_id")
        return {
            "application_id": self.application_id if self.application_id is not None else application_id or None,
            "user_id": self.user_id if self.user_id is not None else user_id,
        }


def is_staff(request: ApiRequest) -> bool:
    user = request.user
    return user is not None and user.is_active and user.is_staff


def usage_scope(request: ApiRequest, *, keys_only: bool = False) -> Scope:
    """The scope of the caller behind `request`; `keys_only` refuses signed-in people who are not staff."""
    if is_staff(request):
        return Scope()
    caller: Caller = request.auth
    if caller.key_id is not None:
        if keys_only:
            return Scope(application_id=caller.application_id)
        return Scope(application_id=caller.application_id, user_id=caller.user_id if caller.user_pinned else None)
    if request.user is not None and not keys_only:
        # A signed-in person sees their own calls from the web pages, as the chat records them.
        return Scope(application_id=WEB_APPLICATION, user_id=request.user.get_username())
    raise Forbidden("Usage figures need a gateway key or a staff login.")
