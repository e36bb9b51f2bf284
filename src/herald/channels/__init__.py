"""Channels: one file per channel, discovered at import."""

from __future__ import annotations

import importlib
import pkgutil

from herald.channels.base import Channel


def _discover() -> dict[str, type[Channel]]:
    found: dict[str, type[Channel]] = {}
    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("_") or module.name == "base":
            continue
        mod = importlib.import_module(f"{__name__}.{module.name}")
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, Channel) and obj is not Channel and getattr(obj, "name", None):
                found[obj.name] = obj
    for name, cls in found.items():  # a logical channel routes over the providers that name it
        providers = tuple(sorted(n for n, c in found.items() if c.routes_for == name))
        if providers:
            cls.routes_over = providers
    return dict(sorted(found.items()))


CHANNELS: dict[str, type[Channel]] = _discover()


def channel_kinds() -> list[str]:
    return list(CHANNELS)
