"""What a type's template renders to with some data, before anything is sent: ``POST
/v1/templates/preview`` and the console's Send page (which previews every channel of the send)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from herald.core.errors import Invalid
from herald.core.locales import pick_locale
from herald.engine import catalog_admin
from herald.engine.service import Herald
from herald.store import catalog


@dataclass(frozen=True)
class Preview:
    type: str
    channel: str
    locale: str
    fields: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"type": self.type, "channel": self.channel, "locale": self.locale, "fields": self.fields}


async def preview_template(
    herald: Herald, type_key: str, channel: str, locale: str | None, data: dict[str, Any]
) -> Preview:
    """``type_key``'s template for ``channel`` (the locale nearest ``locale``) rendered with ``data``
    as a trigger renders it; Invalid naming ``type`` (no such type), ``channel`` (no template) or
    what the template needs and the data lacks."""
    async with herald.db.read() as conn:
        if await catalog.get_type(conn, type_key) is None:
            raise Invalid([("type", f"unknown notification type '{type_key}'")])
        templates = (await catalog.get_templates(conn, type_key)).get(channel, {})
    chosen = pick_locale(templates.keys(), locale, herald.settings.default_locale)
    if chosen is None:
        raise Invalid([("channel", f"type '{type_key}' has no template for channel '{channel}'")])
    rendered = await catalog_admin.render_preview(channel, chosen, templates[chosen], data)
    return Preview(type_key, channel, chosen, rendered)
