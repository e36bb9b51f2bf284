"""Choosing which locale's template a recipient gets."""

from __future__ import annotations

from collections.abc import Collection


def pick_locale(available: Collection[str], wanted: str | None, default: str) -> str | None:
    """Exact match, then same language, then the default, then its language, then any (sorted)."""
    if not available:
        return None
    for candidate in (wanted, default):
        if not candidate:
            continue
        if candidate in available:
            return candidate
        lang = candidate.split("-")[0].lower()
        for loc in sorted(available):
            if loc.split("-")[0].lower() == lang:
                return loc
    return sorted(available)[0]
