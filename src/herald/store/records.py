"""Typed rows the store hands to the engine (and takes back), so a renamed column is a type
error, not a runtime ``KeyError``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from herald.core.enums import DeliveryStatus
from herald.core.records import Profile


def _columns(cls: type, row: Mapping[Any, Any]) -> dict[str, Any]:
    """The row's value for each field of the dataclass ``cls`` (fields are named after columns)."""
    return {f.name: row[f.name] for f in fields(cls)}


@dataclass(frozen=True)
class Delivery:
    """One notification × user × channel: the unit of work and its trace."""

    id: str
    notification_id: str
    user_id: str
    channel: str
    status: DeliveryStatus
    priority: int
    attempts: int
    account: str | None = None
    reason: str | None = None
    reason_detail: str | None = None
    last_error: str | None = None
    provider_message_id: str | None = None
    next_attempt_at: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    expires_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Delivery:
        return cls(**{**_columns(cls, row), "status": DeliveryStatus(row["status"])})

    @property
    def failed_before(self) -> bool:
        """An earlier attempt of this delivery failed (so a retry may fail over)."""
        return self.attempts > 1 and self.last_error is not None


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    payload: dict[str, Any]
    status: str
    priority: int
    attempts: int
    run_at: datetime
    lease_owner: str | None = None
    lease_until: datetime | None = None
    last_error: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Job:
        return cls(**{**_columns(cls, row), "payload": dict(row["payload"] or {})})


@dataclass(frozen=True)
class Notification:
    id: str
    type_key: str
    category: str
    priority: str
    status: str
    channels: list[str]
    data: dict[str, Any]
    rendered: dict[str, dict[str, dict[str, Any]]]
    """``{channel: {locale: fields}}``: the templates rendered with the trigger's data."""
    created_at: datetime
    accounts: dict[str, list[str]] = field(default_factory=dict)
    """``{channel: [account, ...]}`` named by the trigger or its type; empty: the default."""
    actor: dict[str, Any] | None = None
    target: dict[str, Any] | None = None
    send_at: datetime | None = None
    expires_at: datetime | None = None
    digest_id: str | None = None
    """Set on a digest's own notification (engine/digests.py): the digest it sends."""

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Notification:
        return cls(**{**_columns(cls, row), "accounts": dict(row["accounts"] or {})})


@dataclass(frozen=True)
class Account:
    """A channel account with its config decrypted; ``config`` None (and ``error``) when it
    cannot be decrypted, e.g. after HERALD_SECRET_KEY changed."""

    name: str
    channel: str
    config: dict[str, Any] | None
    default: bool
    group: str | None = None
    error: str | None = None

    @property
    def weight(self) -> int:
        return int((self.config or {}).get("weight", 1))

    @property
    def weighted(self) -> bool:
        return "weight" in (self.config or {})


def profile_from_row(row: Mapping[Any, Any]) -> Profile:
    return Profile(
        **{**_columns(Profile, row), "channels": dict(row["channels"] or {}), "data": dict(row["data"] or {})}
    )
