"""Shaping rows into the JSON that API.md documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def _t(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def user_view(u: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": u["id"],
        "name": u["name"],
        "email": u["email"],
        "phone": u["phone"],
        "locale": u["locale"],
        "timezone": u["timezone"],
        "channels": u["channels"] or {},
        "tags": u["tags"] or [],
        "data": u["data"] or {},
        "created_at": _t(u["created_at"]),
        "updated_at": _t(u["updated_at"]),
    }


def type_view(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": t["key"],
        "name": t["name"],
        "names": t.get("names") or {},
        "category": t["category"],
        "priority": t["priority"],
        "channels": t["channels"],
        "critical": t["critical"],
        "ttl_seconds": t["ttl_seconds"],
        "description": t["description"],
        "accounts": t.get("accounts"),
        "quiet_hours": t.get("quiet_hours") or "defer",
        "dedup_seconds": t.get("dedup_seconds"),
        "caps": t.get("caps") or [],
        "throttle": t.get("throttle"),
        "merge": t.get("merge"),
        "digest": t.get("digest"),
        "created_at": _t(t["created_at"]),
        "updated_at": _t(t["updated_at"]),
    }


def inbox_item_view(i: dict[str, Any]) -> dict[str, Any]:
    out = {
        "id": i["id"],
        "type": i["type"],
        "category": i["category"],
        "title": i["title"],
        "summary": i["summary"],
        "body": i["body"],
        "data": i["data"] or {},
        "actor": i["actor"],
        "count": i.get("count") or 1,
        "actors": _actors(i),
        "target": i["target"],
        "action_url": i["action_url"],
        "actions": i["actions"] or [],
        "response": response_view(i.get("response")),
        "read": i["read_at"] is not None,
        "read_at": _t(i["read_at"]),
        "seen_at": _t(i["seen_at"]),
        "archived": i["archived_at"] is not None,
        "created_at": _t(i["created_at"]),
        "expires_at": _t(i["expires_at"]),
    }
    for extra in ("kind", "content_type", "media_url"):
        if extra in i:
            out[extra] = i[extra]
    return out


def _actors(i: dict[str, Any]) -> Any:
    """Who caused the events an item stands for, newest first: kept by a merging item (engine/merge.py),
    else its one actor (announcements have none)."""
    stored = i.get("actors")
    if stored is not None:
        return stored
    return [i["actor"]] if i.get("actor") else []


def response_view(r: dict[str, Any] | None) -> dict[str, Any] | None:
    """The user's own answer to an item's actions, as the item shows it (None: not answered)."""
    if r is None:
        return None
    return {"action": r["action"], "reason": r["reason"], "at": _t(r["at"])}


def announcement_view(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": a["id"],
        "title": a["title"],
        "summary": a["summary"],
        "body": a["body"],
        "kind": a["kind"],
        "content_type": a["content_type"],
        "media_url": a["media_url"],
        "action_url": a["action_url"],
        "data": a["data"] or {},
        "audience": a["audience"],
        "starts_at": _t(a["starts_at"]),
        "ends_at": _t(a["ends_at"]),
        "created_at": _t(a["created_at"]),
        "updated_at": _t(a["updated_at"]),
    }


def delivery_view(d: dict[str, Any], attempts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": d["id"],
        "user_id": d["user_id"],
        "channel": d["channel"],
        "account": d["account"],
        "status": d["status"],
        "reason": d["reason"],
        "reason_detail": d.get("reason_detail"),
        "attempts": d["attempts"],
        "last_error": d["last_error"],
        "next_attempt_at": _t(d["next_attempt_at"]) if d["status"] == "pending" else None,
        "updated_at": _t(d["updated_at"]),
        "attempt_log": [
            {
                "attempt": a["attempt"],
                "outcome": a["outcome"],
                "account": a.get("account"),
                "code": a["code"],
                "error": a["error"],
                "started_at": _t(a["started_at"]),
                "finished_at": _t(a["finished_at"]),
            }
            for a in attempts
        ],
    }


def inapp_delivery_view(item: dict[str, Any]) -> dict[str, Any]:
    """In-app deliveries are the inbox items themselves: written, hence delivered, at acceptance."""
    return {
        "id": item["id"],
        "user_id": item["user_id"],
        "channel": "inapp",
        "account": None,
        "status": "delivered",
        "reason": None,
        "reason_detail": None,
        "attempts": 1,
        "last_error": None,
        "next_attempt_at": None,
        "updated_at": _t(item["created_at"]),
        "read": item["read_at"] is not None,
        "attempt_log": [],
    }


def account_view(a: dict[str, Any], masked_config: dict[str, Any], callback_url: str | None = None) -> dict[str, Any]:
    """An account as reads show it; ``masked_config`` is its config with the secrets masked by its
    channel (``engine.accounts.masked_config``): never the stored config itself."""
    view = {
        "name": a["name"],
        "channel": a["channel"],
        "config": masked_config,
        "default": a["default"],
        "group": a.get("group"),
        "created_at": _t(a["created_at"]),
        "updated_at": _t(a["updated_at"]),
    }
    if a.get("error"):
        view["error"] = a["error"]
    if callback_url:
        view["callback_url"] = callback_url
    return view
