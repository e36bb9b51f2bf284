"""Typed rows the store hands to the engine (and takes back), so a renamed column is a type
error, not a runtime ``KeyError``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from herald.core.enums import DeliveryStatus


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
    last_error: str | None = None
    provider_message_id: str | None = None
    next_attempt_at: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    expires_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Delivery:
        return cls(
            id=row["id"],
            notification_id=row["notification_id"],
            user_id=row["user_id"],
            channel=row["channel"],
            status=DeliveryStatus(row["status"]),
            priority=int(row["priority"]),
            attempts=int(row["attempts"]),
            account=row["account"],
            reason=row["reason"],
            last_error=row["last_error"],
            provider_message_id=row["provider_message_id"],
            next_attempt_at=row["next_attempt_at"],
            lease_owner=row["lease_owner"],
            lease_until=row["lease_until"],
            expires_at=row["expires_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

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
    def from_row(cls, row: Mapping[str, Any]) -> Job:
        return cls(
            id=row["id"],
            kind=row["kind"],
            payload=dict(row["payload"] or {}),
            status=row["status"],
            priority=int(row["priority"]),
            attempts=int(row["attempts"]),
            run_at=row["run_at"],
            lease_owner=row["lease_owner"],
            lease_until=row["lease_until"],
            last_error=row["last_error"],
        )


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

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Notification:
        return cls(
            id=row["id"],
            type_key=row["type_key"],
            category=row["category"],
            priority=row["priority"],
            status=row["status"],
            channels=list(row["channels"] or []),
            data=dict(row["data"] or {}),
            rendered=dict(row["rendered"] or {}),
            created_at=row["created_at"],
            accounts=dict(row["accounts"] or {}),
            actor=row["actor"],
            target=row["target"],
            send_at=row["send_at"],
            expires_at=row["expires_at"],
        )


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


@dataclass(frozen=True)
class UserRecord:
    id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    timezone: str | None = None
    channels: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> UserRecord:
        return cls(
            id=row["id"],
            name=row["name"],
            email=row["email"],
            phone=row["phone"],
            locale=row["locale"],
            timezone=row["timezone"],
            channels=dict(row["channels"] or {}),
            tags=list(row["tags"] or []),
            data=dict(row["data"] or {}),
        )
