"""``${var}`` templates, rendered by Jinja2's sandbox.

Variables use ``${`` ``}`` as delimiters (compatible with the seed's ``${amount}``), undefined
variables are errors rather than empty strings, and anything reaching for Python internals
(``${ ''.__class__ }``) is refused by the sandbox. Fields whose name is ``html`` or ends in
``_html`` are autoescaped.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from datetime import date, time
from decimal import Decimal
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from herald.core.errors import TemplateError

MAX_OUTPUT_CHARS = 100_000
# ints beyond this many bits take seconds to multiply and cannot be printed anyway (4300 digits)
MAX_INT_BITS = 64_000
MAX_PRINT_DEPTH = 32
_SCALARS = (str, bool, int, float, complex, Decimal, date, time)
_MISSING_TOP = re.compile(r"'([^']+)' is undefined")
_MISSING_ATTR = re.compile(r"has no attribute '([^']+)'")


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus limits on ``*`` and ``**`` so a template cannot allocate gigabytes."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > 100:
                raise SecurityError("exponent too large")
            # (((9 ** 100) ** 100) ** 100) ** 100 passes the check above at every step
            if isinstance(left, int) and isinstance(right, int) and abs(left).bit_length() * right > MAX_INT_BITS:
                raise SecurityError("result too large")
            return operator.pow(left, right)
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS
        ):
            raise SecurityError("result too large")
        if isinstance(left, str | list | tuple) and isinstance(right, int) and len(left) * right > MAX_OUTPUT_CHARS:
            raise SecurityError("repetition too large")
        if isinstance(right, str | list | tuple) and isinstance(left, int) and len(right) * left > MAX_OUTPUT_CHARS:
            raise SecurityError("repetition too large")
        return operator.mul(left, right)


def _check_printable(value: Any, budget: list[int], depth: int = 0) -> None:
    """Data may be printed; Python objects may not (their repr shows classes, functions, addresses)."""
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined: raises UndefinedError naming the variable
        return
    if depth > MAX_PRINT_DEPTH:
        raise SecurityError("value too deeply nested to print")
    if value is None:
        cost = 4
    elif isinstance(value, int) and not isinstance(value, bool):
        cost = abs(value).bit_length() // 3 + 1
    elif isinstance(value, _SCALARS):
        cost = len(value) if isinstance(value, str) else 32
    elif isinstance(value, list | tuple):
        cost = 2
        for item in value:
            _check_printable(item, budget, depth + 1)
    elif isinstance(value, dict):
        cost = 2
        for key, item in value.items():
            _check_printable(key, budget, depth + 1)
            _check_printable(item, budget, depth + 1)
    else:
        raise SecurityError(f"a {type(value).__name__} value cannot be printed")
    budget[0] -= cost
    if budget[0] < 0:
        raise SecurityError("value too large to print")


def _finalize(value: Any) -> Any:
    _check_printable(value, [MAX_OUTPUT_CHARS])
    return value


def _make_env(autoescape: bool) -> _BoundedSandbox:
    return _BoundedSandbox(
        variable_start_string="${",
        variable_end_string="}",
        undefined=StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
        finalize=_finalize,
    )


_PLAIN = _make_env(autoescape=False)
_HTML = _make_env(autoescape=True)


def _is_html_field(path: str) -> bool:
    last = path.rsplit(".", 1)[-1]
    return last == "html" or last.endswith("_html")


@lru_cache(maxsize=4096)
def _compile(source: str, html: bool) -> Any:
    env = _HTML if html else _PLAIN
    return env.from_string(source)


def _compile_field(path: str, source: str) -> Any:
    try:
        return _compile(source, _is_html_field(path))
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error in '{path}': {exc.message}", field=path) from exc
    except (RecursionError, SyntaxError, MemoryError) as exc:  # nesting too deep for the parser or for Python
        raise TemplateError(f"template in '{path}' is too deeply nested", field=path) from exc


def _walk(value: Any, path: str) -> list[tuple[str, str]]:
    """Every string leaf of a nested field value, with its dotted path."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, Mapping):
        out: list[tuple[str, str]] = []
        for key, sub in value.items():
            out.extend(_walk(sub, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(value, list):
        out = []
        for i, sub in enumerate(value):
            out.extend(_walk(sub, f"{path}.{i}"))
        return out
    return []


def validate_fields(fields: Mapping[str, Any]) -> None:
    """Compile every string in ``fields``; raise TemplateError naming the first bad field."""
    for path, source in _walk(fields, ""):
        _compile_field(path, source)


def _render_bounded(template: Any, context: Mapping[str, Any], path: str) -> str:
    """Render chunk by chunk, stopping at the cap: a loop must not build gigabytes before the check."""
    parts: list[str] = []
    size = 0
    for chunk in template.generate(context):
        size += len(chunk)
        if size > MAX_OUTPUT_CHARS:
            raise TemplateError(f"rendered '{path}' is longer than {MAX_OUTPUT_CHARS} characters", field=path)
        parts.append(chunk)
    return "".join(parts)


def _render_one(path: str, source: str, context: Mapping[str, Any]) -> str:
    if "${" not in source and "{%" not in source:
        return source
    template = _compile_field(path, source)
    try:
        out = _render_bounded(template, context, path)
    except TemplateError:
        raise
    except UndefinedError as exc:
        message = str(exc.message or exc)
        match = _MISSING_TOP.search(message) or _MISSING_ATTR.search(message)
        variable = match.group(1) if match else None
        raise TemplateError(
            f"missing variable '{variable}' in '{path}'" if variable else f"undefined value in '{path}': {message}",
            field=path,
            variable=variable,
        ) from exc
    except SecurityError as exc:
        raise TemplateError(f"template in '{path}' is not allowed: {exc}", field=path) from exc
    except Exception as exc:  # filters raise what they like (FilterArgumentError, AssertionError, RecursionError...)
        raise TemplateError(f"template in '{path}' failed: {type(exc).__name__}: {exc}", field=path) from exc
    if len(out) > MAX_OUTPUT_CHARS:
        raise TemplateError(f"rendered '{path}' is longer than {MAX_OUTPUT_CHARS} characters", field=path)
    return str(out)


def _render_value(value: Any, path: str, context: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return _render_one(path, value, context)
    if isinstance(value, Mapping):
        return {k: _render_value(v, f"{path}.{k}" if path else str(k), context) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_value(v, f"{path}.{i}", context) for i, v in enumerate(value)]
    return value


def render_fields(fields: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Render every string in ``fields`` (nested dicts and lists too) against ``context``."""
    return {k: _render_value(v, str(k), context) for k, v in fields.items()}
