"""The console's navigation: every page the console will have, in order, with the least role that
sees it. A page not built yet has no ``path`` and shows as "coming soon" (never a fake page).

Adding a page: give its entry the path (and the role its GET requires), and register its router
in ``web/console/__init__.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from herald.core.console import Role

if TYPE_CHECKING:
    from herald.web.console.auth import Console


@dataclass(frozen=True)
class NavItem:
    key: str
    """Names the entry: its label is the message ``nav.<key>``; pages pass it to ``render(nav=…)``."""
    path: str | None
    role: Role


NAV: tuple[NavItem, ...] = (
    NavItem("dashboard", "/console", Role.VIEWER),
    NavItem("types", "/console/types", Role.VIEWER),
    NavItem("templates", "/console/templates", Role.VIEWER),
    NavItem("channel_accounts", "/console/channel-accounts", Role.ADMIN),
    NavItem("announcements", "/console/announcements", Role.VIEWER),
    NavItem("send", "/console/send", Role.OPERATOR),
    NavItem("trace", "/console/trace", Role.VIEWER),
    NavItem("users", "/console/users", Role.VIEWER),
    NavItem("api_keys", "/console/api-keys", Role.ADMIN),
    NavItem("event_webhooks", "/console/event-webhooks", Role.ADMIN),
    NavItem("accounts", "/console/accounts", Role.ADMIN),
    NavItem("audit", "/console/audit", Role.ADMIN),
)


@dataclass(frozen=True)
class NavEntry:
    key: str
    label: str
    path: str | None
    current: bool


def nav_for(console: Console, current: str) -> list[NavEntry]:
    """The entries ``console``'s account may see (none before login), ``current`` marked."""
    if console.session is None:
        return []
    role = console.session.account.role
    return [
        NavEntry(item.key, console.t(f"nav.{item.key}"), item.path, item.key == current)
        for item in NAV
        if role.allows(item.role)
    ]
