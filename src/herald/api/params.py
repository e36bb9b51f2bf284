"""Path and query parameters, and small conversions, shared by the server-side routers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from herald.api.schemas import KEY_PATTERN, AudienceIn
from herald.core.errors import Invalid

UserId = Annotated[str, Path(min_length=1, max_length=200)]
TypeKey = Annotated[str, Path(pattern=KEY_PATTERN)]
AccountName = Annotated[str, Path(pattern=KEY_PATTERN)]
ChannelName = Annotated[str, Path(max_length=40)]
Limit = Annotated[int, Query(ge=1, le=100)]
# as on /v1/me/inbox: a cursor this API gave is far shorter, and a long one could nest JSON past the recursion limit
Cursor = Annotated[str | None, Query(max_length=500)]


def audience_of(audience: AudienceIn | None) -> dict[str, Any] | None:
    """The audience as stored (``{"all": true}`` or ``{"tags": [...]}``), or Invalid naming ``audience``."""
    if audience is None:
        return None
    try:
        return audience.as_dict()
    except ValueError as exc:
        raise Invalid([("audience", str(exc))]) from exc
