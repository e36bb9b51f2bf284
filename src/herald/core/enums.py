"""The closed vocabularies of the domain."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    REMINDER = "reminder"
    ANNOUNCEMENT = "announcement"
    DIRECT = "direct"


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Lower is claimed first."""
        return {"high": 0, "normal": 1, "low": 2}[self.value]


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    SKIPPED = "skipped"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self not in (DeliveryStatus.PENDING, DeliveryStatus.SENDING)


class NotificationStatus(StrEnum):
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    EXPANDING = "expanding"
    PROCESSED = "processed"
    CANCELLED = "cancelled"
    COLLECTING = "collecting"
    """A digest's own notification while its window is open (engine/digests.py)."""


class AnnouncementKind(StrEnum):
    NOTICE = "notice"
    BANNER = "banner"
    ACTIVITY = "activity"


class ContentType(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VOICE = "voice"


class Scope(StrEnum):
    SEND = "send"
    READ = "read"
    ADMIN = "admin"
    CONVERSATIONS_READ = "conversations:read"

    @property
    def implied_by_admin(self) -> bool:
        """Reading users' private conversations is granted by name alone, never by ``admin``."""
        return self is not Scope.CONVERSATIONS_READ


class InboxStatus(StrEnum):
    UNREAD = "unread"
    READ = "read"
    ALL = "all"
