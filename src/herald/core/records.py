"""Small value objects shared by channels and the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Endpoint:
    """An address a user registered with a channel from a device (a browser's push subscription),
    with the channel's own data about it (the subscription's keys)."""

    address: str
    data: dict[str, Any] = field(default_factory=dict)
