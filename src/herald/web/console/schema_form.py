"""A form generated from a channel's settings JSON Schema (``GET /v1/channels`` serves the same one),
and the config read back from the submitted form.

Each property becomes one field named ``cfg.<property>``: a checkbox for a boolean, a number input,
a select for an enum, a password input for a secret (write-only: never filled in; left empty on
edit it keeps the stored secret, sent to the engine as the mask; a checkbox removes an optional one),
a JSON textarea for lists and objects, a text input otherwise. Values typed wrongly come back as (field, message) pairs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from herald.core.urls import MASK
from herald.web.console.auth import Form

PREFIX = "cfg."
CLEAR_PREFIX = "clear."
"""A checkbox ``clear.<field>`` beside a stored optional secret removes it (empty alone keeps it)."""
MAX_JSON_FIELD = 20_000


@dataclass(frozen=True)
class SchemaField:
    name: str
    title: str
    description: str
    kind: str
    """``text``, ``integer``, ``number``, ``boolean``, ``secret``, ``select`` or ``json``."""
    required: bool
    choices: tuple[str, ...] = ()
    default: Any = None

    @property
    def input_name(self) -> str:
        return PREFIX + self.name


def _branches(prop: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The non-null alternatives of a property (``X | None`` is ``anyOf: [X, null]``)."""
    options = prop.get("anyOf") or prop.get("oneOf") or [prop]
    return [o for o in options if o.get("type") != "null"] or [prop]


def _kind(prop: Mapping[str, Any], secret: bool) -> tuple[str, tuple[str, ...]]:
    branches = _branches(prop)
    if secret and all(b.get("type") == "string" for b in branches):
        return "secret", ()
    if len(branches) != 1:
        return "json", ()
    branch = branches[0]
    if "enum" in branch:
        return "select", tuple(str(v) for v in branch["enum"])
    kind = branch.get("type")
    if kind in ("integer", "number", "boolean"):
        return str(kind), ()
    if kind == "string":
        return "text", ()
    return "json", ()  # arrays, objects, $refs: typed as JSON


def schema_fields(schema: Mapping[str, Any], secret_fields: list[str]) -> list[SchemaField]:
    required = set(schema.get("required", ()))
    fields = []
    for name, prop in (schema.get("properties") or {}).items():
        kind, choices = _kind(prop, name in secret_fields)
        fields.append(
            SchemaField(
                name=name,
                title=str(prop.get("title") or name),
                description=str(prop.get("description") or ""),
                kind=kind,
                required=name in required,
                choices=choices,
                default=prop.get("default"),
            )
        )
    return fields


def shown_value(field: SchemaField, config: Mapping[str, Any] | None) -> str:
    """What the field shows: the (masked) stored value or the default; a secret shows nothing."""
    if field.kind == "secret":
        return ""
    value = config.get(field.name, field.default) if config is not None else field.default
    if value is None:
        return ""
    if field.kind == "json":
        return json.dumps(value, ensure_ascii=False)
    if field.kind == "boolean":
        return "on" if value else ""
    return str(value)


def typed_values(fields: list[SchemaField], form: Form) -> dict[str, str]:
    """The form's values as typed, to show again after a mistake (secrets never)."""
    return {f.name: ("" if f.kind == "secret" else form.get(f.input_name)) for f in fields}


def _read(field: SchemaField, raw: str) -> Any:
    if field.kind == "integer":
        return int(raw)
    if field.kind == "number":
        return float(raw)
    if field.kind == "json":
        if len(raw) > MAX_JSON_FIELD:
            raise ValueError(f"at most {MAX_JSON_FIELD} characters")
        return json.loads(raw)
    return raw


def config_from_form(
    fields: list[SchemaField], form: Form, *, secrets_stored: set[str]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The config the form describes, and the (``config.<field>``, message) pairs of values that are
    not what their field takes. An empty optional field is left out (its default applies)."""
    config: dict[str, Any] = {}
    errors: list[tuple[str, str]] = []
    for field in fields:
        raw = form.get(field.input_name).strip() if field.kind != "secret" else form.get(field.input_name)
        if field.kind == "boolean":
            config[field.name] = field.input_name in form
        elif field.kind == "secret":
            if raw:
                config[field.name] = raw
            elif CLEAR_PREFIX + field.name in form and not field.required:
                pass  # left out: the stored secret goes, the field's default (none) applies
            elif field.name in secrets_stored:
                config[field.name] = MASK  # the engine keeps the stored secret
            elif field.required:
                config[field.name] = ""
        elif raw:
            try:
                config[field.name] = _read(field, raw)
            except ValueError:
                errors.append((f"config.{field.name}", f"not a valid {field.kind} value"))
        elif field.required:
            config[field.name] = ""
    return config, errors
