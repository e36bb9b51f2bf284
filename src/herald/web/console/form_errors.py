"""A console form checked with the API's own body model: each mistake named by the field it belongs
to, so the page can show it next to that field (the same words the API answers with)."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from herald.core.errors import Invalid
from herald.core.inputs import printable

Model = TypeVar("Model", bound=BaseModel)
FieldErrors = dict[str, str]
"""Field name → its first mistake."""

_OFFSET = re.compile(r"(Z|[+-]\d\d:?\d\d)$", re.IGNORECASE)


def utc_moment(value: str) -> str | None:
    """A ``datetime-local`` input's value as RFC 3339: the console's times are UTC, so a time typed
    without an offset is taken as UTC; an empty field is None."""
    value = value.strip()
    if not value:
        return None
    return value if _OFFSET.search(value) else value + "Z"


def errors_of(exc: ValidationError | Invalid) -> FieldErrors:
    """The first mistake of each top-level field (``audience.tags.0`` is shown at ``audience``)."""
    found: FieldErrors = {}
    pairs: list[tuple[str, str]]
    if isinstance(exc, Invalid):
        pairs = [(field.split(".")[0] or "body", message) for field, message in exc.errors]
    else:
        pairs = [(str(e["loc"][0]) if e.get("loc") else "body", e.get("msg", "invalid")) for e in exc.errors()]
    for field, message in pairs:
        found.setdefault(field, printable(message))
    return found


def checked(model: type[Model], values: dict[str, Any]) -> Model:
    """``values`` as ``model``, or ValidationError (caught by the page with ``errors_of``)."""
    return model.model_validate(values)
