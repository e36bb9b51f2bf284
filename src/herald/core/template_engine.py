"""The Jinja2 side of ``herald.core.templates``: the bounded sandbox, compiling and rendering.

Imported on first use (the first template saved, validated or rendered), not when a server starts:
Jinja2 and its sandbox cost ~2 MiB and ~20 ms that an idle server does not need. Callers use
``herald.core.templates``, which documents the behaviour and holds the limits and errors.
"""

from __future__ import annotations

import operator
import re
import string
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from datetime import time as dtime
from decimal import Decimal
from functools import lru_cache, wraps
from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.meta import find_undeclared_variables
from jinja2.runtime import LoopContext, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from herald.core.errors import TemplateError
from herald.core.templates import (
    _MARKER,
    MAX_INT_BITS,
    MAX_OUTPUT_CHARS,
    MAX_PRINT_DEPTH,
    MAX_PRODUCED_CHARS,
    MAX_RANGE,
    MAX_STEPS,
    RECIPIENT,
    RECIPIENT_FIELDS,
    RENDER_SECONDS,
    SAMPLE_RECIPIENT,
    MissingVariables,
    TemplateLimitError,
    has_recipient_fields,
)

_SCALARS = (str, bool, int, float, complex, Decimal, date, dtime)
_MISSING_TOP = re.compile(r"'([^']+)' is undefined")
_MISSING_ATTR = re.compile(r"has no attribute '([^']+)'")
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


class _Limit(SecurityError):
    """Raised inside a render; turned into ``TemplateLimitError`` with the field's path."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass
class _Budget:
    steps: int
    produced: int
    deadline: float

    def step(self, count: int = 1) -> None:
        self.steps -= count
        if self.steps < 0:
            raise _Limit("steps", f"more than {MAX_STEPS} loop iterations and calls")
        if time.monotonic() > self.deadline:
            raise _Limit("time", f"rendering took longer than {RENDER_SECONDS:g} s")

    def produce(self, size: int) -> None:
        if size > MAX_OUTPUT_CHARS:
            raise _Limit("string", f"a string longer than {MAX_OUTPUT_CHARS} characters")
        self.produced -= size
        if self.produced < 0:
            raise _Limit("produced", f"more than {MAX_PRODUCED_CHARS} characters produced in all")


_BUDGET: ContextVar[_Budget | None] = ContextVar("herald_template_budget", default=None)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:  # only render_fields & co. render, and they always set one
        raise SecurityError("templates render only within a budget")
    return budget


# -- sizes, estimated before anything is built ------------------------------------------------------


def _size(value: Any, limit: int = MAX_PRODUCED_CHARS, depth: int = 0) -> int:
    """About how long ``str(value)`` is, counting no further than ``limit`` (never building it)."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, Undefined) or value is None:
        return 4
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return abs(value).bit_length() // 3 + 2
    if depth > MAX_PRINT_DEPTH:
        return limit + 1
    if isinstance(value, list | tuple | set | frozenset | range):
        if isinstance(value, range):
            return len(value) * 8 + 2
        total = 2
        for item in value:
            total += _size(item, limit, depth + 1) + 2
            if total > limit:
                return total
        return total
    if isinstance(value, Mapping):
        total = 2
        for key, item in value.items():
            total += _size(key, limit, depth + 1) + _size(item, limit, depth + 1) + 4
            if total > limit:
                return total
        return total
    return 64


def _check_size(size: int) -> None:
    if size > MAX_OUTPUT_CHARS:
        raise _Limit("string", f"a string longer than {MAX_OUTPUT_CHARS} characters")


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
        raise _Limit("output", f"a value longer than {MAX_OUTPUT_CHARS} characters")


def _check_stringable(*values: Any) -> None:
    """What an expression turns into text (``~``, ``%``, ``.format``, ``|string`` …) is data, as for
    printing: ``x ~ self`` or ``'%s' % range`` would otherwise show Python objects' reprs."""
    budget = [sys.maxsize]  # what they are, not their size: the size checks name that limit
    for value in values:
        if not isinstance(value, Undefined):
            _check_printable(value, budget)


def _finalize(value: Any) -> Any:
    if value is None:  # JSON null prints as nothing, not "None"
        return ""
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises naming the variable; a lenient one prints as nothing
        return ""
    _check_printable(value, [MAX_OUTPUT_CHARS])
    _budget().produce(_size(value))
    return value


# -- the pieces a template can call, each bounded --------------------------------------------------


def _bounded_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise _Limit("range", f"range() of more than {MAX_RANGE} items")
    return rng


def _bounded_iter(iterable: Any) -> Iterator[Any]:
    iterator = iter(iterable)  # an undefined iterable raises here, naming itself
    budget = _budget()

    def counted() -> Iterator[Any]:
        for item in iterator:
            budget.step()
            yield item

    return counted()


def _check_int_args(args: Iterable[Any]) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_OUTPUT_CHARS:
            raise _Limit("string", f"an argument of {arg} (at most {MAX_OUTPUT_CHARS})")


def _replace_size(text: Any, old: Any, new: Any, count: Any = -1) -> int:
    if not isinstance(text, str | bytes) or not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return _size(text)
    hits = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(0, len(new) - len(old))


def _join_size(items: Any, sep: Any = "") -> int:
    if isinstance(items, str | bytes | range):
        return len(items) * (1 + _size(sep))
    if isinstance(items, list | tuple | set | frozenset | Mapping):
        total = 0
        for item in items:
            total += _size(item) + _size(sep)
            if total > MAX_OUTPUT_CHARS:
                return total
        return total
    return 0  # a generator (map, select, …): its items are checked as they are built


def _percent_size(fmt: str, args: Any) -> int:
    for width, precision in _PERCENT_SPEC.findall(fmt):
        for number in (width, precision):
            if number == "*" or (number and int(number) > MAX_OUTPUT_CHARS):
                raise _Limit("string", f"a format width over {MAX_OUTPUT_CHARS}")
    values = args if isinstance(args, tuple) else list(args.values()) if isinstance(args, Mapping) else [args]
    biggest = max((_size(v) for v in values), default=0)
    return len(fmt) + fmt.count("%") * max(biggest, 32)


def _format_size(fmt: str, args: Iterable[Any]) -> int:
    fields = 0
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return len(fmt)  # str.format raises the same error itself
    for _, name, spec, _ in parsed:
        if name is None:
            continue
        fields += 1
        if spec and ("{" in spec or any(int(n) > MAX_OUTPUT_CHARS for n in _DIGITS.findall(spec))):
            raise _Limit("string", f"a format width over {MAX_OUTPUT_CHARS}")
    biggest = max((_size(v) for v in args), default=0)
    return len(fmt) + fields * max(biggest, 32)


def _str_method_size(name: str, text: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """How long the result of ``text.<name>(*args)`` can be, for the methods that can grow a string."""
    _check_int_args([*args, *kwargs.values()])
    if name == "replace":
        return _replace_size(text, *args[:3])
    if name == "join":
        return _join_size(args[0] if args else (), text)
    if name == "expandtabs":
        tab = args[0] if args else kwargs.get("tabsize", 8)
        tabs: int = text.count("\t" if isinstance(text, str) else b"\t")
        return len(text) + tabs * (tab if isinstance(tab, int) else 8)
    if name == "translate":
        raise SecurityError("str.translate is not allowed in templates")
    if name in ("center", "ljust", "rjust", "zfill"):
        width = args[0] if args else 0
        return max(len(text), width if isinstance(width, int) else 0)
    return len(text)  # the others return at most as much as they are given (upper, split, strip, …)


_STRINGIFYING = frozenset(
    "string tojson pprint escape e forceescape urlencode xmlattr upper lower title capitalize trim striptags"
    " center indent wordwrap truncate wordcount format replace urlize safe".split()
)
"""Filters that turn their whole input into a string: a huge list must not reach them."""


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that refuses to build a string over the limit, and counts as a step."""
    pass_arg = getattr(func, "jinja_pass_arg", None)
    skip = 0 if pass_arg is None else 1  # the context or environment comes first

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.step()
        given = list(args[skip:])
        _check_int_args([*given[1:], *kwargs.values()])
        value = given[0] if given else None
        if name in ("join", "sum") and value is not None and not isinstance(value, Sized):
            value = given[0] = list(_bounded_iter(value))  # a generator: count what it makes, then size it
            args = (*args[:skip], *given)
        if name in _STRINGIFYING or name == "join":
            _check_stringable(*given[:1])
        if name == "join":
            _check_size(_join_size(value, given[1] if len(given) > 1 else kwargs.get("d", "")))
        elif name == "sum":
            _check_size(_join_size(value))
        elif name in _STRINGIFYING:
            size = _size(value)
            _check_size(size)
            if name == "replace":
                _check_size(_replace_size(*given[:4]))
            elif name == "indent":
                _check_size(_indent_size(value, given[1] if len(given) > 1 else kwargs.get("width", 4)))
            elif name == "wordwrap":
                wrap = kwargs.get("wrapstring", given[4] if len(given) > 4 else "\n")
                _check_size(size * (1 + _size(wrap)))
            elif name == "format":
                _check_size(_percent_size(str(value), tuple(given[1:]) or kwargs))
        result = func(*args, **kwargs)
        if isinstance(result, str):
            budget.produce(len(result))
        return result

    guarded.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    return guarded


def _indent_size(text: Any, width: Any) -> int:
    lines = text.count("\n") + 1 if isinstance(text, str) else 1
    per_line = width if isinstance(width, int) else _size(width)
    return _size(text) + lines * max(per_line, 0)


class _Bounded(NodeTransformer):
    """Rewrites a parsed template so every loop counts its items, every ``~`` checks what it builds,
    and literal text output is charged to the render's budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Call(
            nodes.EnvironmentAttribute("bounded_iter"), [node.iter], [], None, None, lineno=node.lineno
        )
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(nodes.EnvironmentAttribute("bounded_concat"), node.nodes, [], None, None, lineno=node.lineno)

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        literal = sum(len(n.data) for n in node.nodes if isinstance(n, nodes.TemplateData))
        if literal:
            charge = nodes.Call(nodes.EnvironmentAttribute("charge"), [nodes.Const(literal)], [], None, None)
            node.nodes.insert(0, charge)
        return node


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with every way to spend time or memory counted or capped."""

    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals = {
            "range": _bounded_range,
            "dict": dict,
            "namespace": self.globals["namespace"],
            "cycler": self.globals["cycler"],
            "joiner": self.globals["joiner"],
        }  # no lipsum: lipsum(10**6) writes a book
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        return _Bounded().visit(tree)  # type: ignore[no-any-return]

    # the hooks the rewritten template calls (reached as ``environment.<name>``)

    def bounded_iter(self, iterable: Any) -> Iterator[Any]:
        return _bounded_iter(iterable)

    def bounded_concat(self, *parts: Any) -> str:
        _check_stringable(*parts)
        _check_size(sum(_size(p) for p in parts))
        parts = tuple("" if p is None else p for p in parts)
        out: str = markup_join(parts) if self.autoescape else str_join(parts)
        _budget().produce(len(out))
        return out

    def charge(self, size: int) -> str:
        _budget().produce(size)
        return ""

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.step()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | bytes) and not isinstance(__obj, type):
            if __obj.__name__ == "join" and args and not isinstance(args[0], Sized):
                args = (list(_bounded_iter(args[0])), *args[1:])
            _check_size(_str_method_size(__obj.__name__, owner, args, kwargs))
        if isinstance(__obj, LoopContext) and args:  # a recursive loop walks its new items uncounted
            args = (_bounded_iter(args[0]), *args[1:])
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, str | bytes):
            budget.produce(len(result))
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            values = list(args) + list(kwargs.values())
            if value.__name__ == "format_map" and args and isinstance(args[0], Mapping):
                values = list(args[0].values())
            _check_stringable(*values)
            _check_size(_format_size(fmt, values))
            return wrapper(*args, **kwargs)

        return checked

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > 100:
                raise SecurityError("exponent too large")
            # (((9 ** 100) ** 100) ** 100) ** 100 passes the check above at every step
            if isinstance(left, int) and isinstance(right, int) and abs(left).bit_length() * right > MAX_INT_BITS:
                raise SecurityError("result too large")
            return operator.pow(left, right)
        if operator_name == "%":
            if isinstance(left, str | bytes):
                _check_stringable(right)
                _check_size(_percent_size(str(left), right))
            return operator.mod(left, right)
        sized = (str, bytes, list, tuple)
        if operator_name == "+":
            if isinstance(left, sized) and isinstance(right, sized):
                _check_size(len(left) + len(right))
                _budget().produce(len(left) + len(right))
            return operator.add(left, right)
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS
        ):
            raise SecurityError("result too large")
        if isinstance(left, sized) and isinstance(right, int):
            _check_size(len(left) * right)
            _budget().produce(len(left) * max(right, 0))
        if isinstance(right, sized) and isinstance(left, int):
            _check_size(len(right) * left)
            _budget().produce(len(right) * max(left, 0))
        return operator.mul(left, right)


class _Permissive(ChainableUndefined):
    """An undefined that prints as nothing and survives any operation (``_record`` sees each use)."""

    __slots__ = ()

    def _record(self) -> None:
        pass

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        self._record()
        return self

    def __str__(self) -> str:
        self._record()
        return ""

    def __iter__(self) -> Iterator[Any]:
        self._record()
        return iter(())

    def __bool__(self) -> bool:
        self._record()
        return False

    def __len__(self) -> int:
        self._record()
        return 0

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __mod__ = __rmod__ = _fail_with_undefined_error
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __pow__ = __rpow__ = _fail_with_undefined_error
    __lt__ = __le__ = __gt__ = __ge__ = __int__ = __float__ = __neg__ = __pos__ = _fail_with_undefined_error


class _RecordingUndefined(_Permissive):
    """Collects every missing variable instead of stopping at the first (a second, diagnostic pass)."""

    __slots__ = ()

    def _record(self) -> None:
        if self._undefined_hint is not None and self._undefined_name is None:
            return
        name = self._undefined_name
        if isinstance(self._undefined_obj, _RecipientView):
            name = f"{RECIPIENT}.{name}"
        seen = _MISSING.get()
        if seen is not None and name and name not in seen:
            seen.append(name)


_MISSING: ContextVar[list[str] | None] = ContextVar("herald_template_missing", default=None)


class _Lenient(_Permissive):
    """A missing key in a recipient's own data prints as nothing (not every user has every key)."""

    __slots__ = ()


class _LenientDict(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        return _Lenient(name=key)


class _RecipientView(dict[str, Any]):
    """``recipient`` in a template: the profile fields, nothing else (``recipient.nmae`` is an error)."""


def _lenient(value: Any, depth: int = 0) -> Any:
    if isinstance(value, Mapping) and depth < MAX_PRINT_DEPTH:
        return _LenientDict({str(k): _lenient(v, depth + 1) for k, v in value.items()})
    return value


def recipient_view(profile: Mapping[str, Any]) -> dict[str, Any]:
    """What ``${recipient.…}`` sees of a user: ``RECIPIENT_FIELDS``, a missing ``data`` key printing as nothing."""
    view = _RecipientView({key: profile.get(key) for key in RECIPIENT_FIELDS})
    view["id"] = str(profile.get("id") or "")
    view["data"] = _lenient(profile.get("data") or {})
    return view


# -- environments and compiling --------------------------------------------------------------------


def _make_env(autoescape: bool, undefined: type[Undefined]) -> _BoundedSandbox:
    return _BoundedSandbox(
        variable_start_string="${",
        variable_end_string="}",
        undefined=undefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
        finalize=_finalize,
    )


_ENVS = {
    (False, False): _make_env(False, StrictUndefined),
    (True, False): _make_env(True, StrictUndefined),
    (False, True): _make_env(False, _RecordingUndefined),
    (True, True): _make_env(True, _RecordingUndefined),
}


def _is_html_field(path: str) -> bool:
    last = path.rsplit(".", 1)[-1]
    return last == "html" or last.endswith("_html")


def _is_template(source: str) -> bool:
    return "${" in source or "{%" in source or "{#" in source


@lru_cache(maxsize=4096)
def _compile(source: str, html: bool, recording: bool = False) -> Any:
    return _ENVS[html, recording].from_string(source)


@lru_cache(maxsize=4096)
def _uses_recipient(source: str) -> bool:
    if not _is_template(source) or RECIPIENT not in source:
        return False
    try:
        return RECIPIENT in find_undeclared_variables(_ENVS[False, False].parse(source))
    except (TemplateSyntaxError, RecursionError, SyntaxError, MemoryError):
        return False  # rendering it names the error


def _compile_field(path: str, source: str, recording: bool = False) -> Any:
    try:
        return _compile(source, _is_html_field(path), recording)
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


# -- rendering -------------------------------------------------------------------------------------


def _render_bounded(template: Any, context: Mapping[str, Any], path: str) -> str:
    """Render chunk by chunk, stopping at the cap: a loop must not build gigabytes before the check."""
    parts: list[str] = []
    size = 0
    for chunk in template.generate(context):
        size += len(chunk)
        if size > MAX_OUTPUT_CHARS:
            raise TemplateLimitError(
                f"template in '{path}' is over a limit: renders longer than {MAX_OUTPUT_CHARS} characters",
                field=path,
                limit="output",
            )
        parts.append(chunk)
    return "".join(parts)


def _render_one(path: str, source: str, context: Mapping[str, Any]) -> str:
    if not _is_template(source):
        return source
    template = _compile_field(path, source)
    try:
        return _render_bounded(template, context, path)
    except TemplateError:
        raise
    except _Limit as exc:
        raise TemplateLimitError(f"template in '{path}' is over a limit: {exc}", field=path, limit=exc.limit) from exc
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
    except RecursionError as exc:
        raise TemplateLimitError(
            f"template in '{path}' is over a limit: recursion too deep", field=path, limit="depth"
        ) from exc
    except MemoryError as exc:  # pragma: no cover - the limits above come first
        raise TemplateLimitError(
            f"template in '{path}' is over a limit: out of memory", field=path, limit="memory"
        ) from exc
    except Exception as exc:  # filters raise what they like (FilterArgumentError, AssertionError, ...)
        raise TemplateError(f"template in '{path}' failed: {type(exc).__name__}: {exc}", field=path) from exc


def _missing_names(path: str, source: str, context: Mapping[str, Any]) -> list[str]:
    """Every variable the template reads that ``context`` lacks (limits still apply)."""
    found: list[str] = []
    token = _MISSING.set(found)
    try:
        _render_bounded(_compile_field(path, source, recording=True), context, path)
    except Exception:  # noqa: S110 - a diagnostic pass: whatever it found so far is the answer
        pass
    finally:
        _MISSING.reset(token)
    return found


def _render_tree(value: Any, path: str, render: Callable[[str, str], Any]) -> Any:
    if isinstance(value, str):
        return render(path, value)
    if isinstance(value, Mapping):
        return {k: _render_tree(v, f"{path}.{k}" if path else str(k), render) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_tree(v, f"{path}.{i}", render) for i, v in enumerate(value)]
    return value


def _rendering(seconds: float | None) -> Any:
    deadline = time.monotonic() + (RENDER_SECONDS if seconds is None else seconds)
    return _BUDGET.set(_Budget(MAX_STEPS, MAX_PRODUCED_CHARS, deadline))


def _with_all_missing(
    fields: Mapping[str, Any], context: Mapping[str, Any], render: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """``render()``, but a missing variable is reported with every other missing one, in every field."""
    try:
        return render()
    except TemplateError as first:
        if first.variable is None:
            raise
        names: list[str] = []
        for path, source in _walk(fields, ""):
            if _is_template(source):
                names.extend(n for n in _missing_names(path, source, context) if n not in names)
        if not names:
            raise
        raise MissingVariables(names, field=first.field) from first


def render_fields(
    fields: Mapping[str, Any], context: Mapping[str, Any], *, seconds: float | None = None
) -> dict[str, Any]:
    """Render every string in ``fields`` (nested dicts and lists too) against ``context``."""
    token = _rendering(seconds)
    try:
        return _with_all_missing(
            fields,
            context,
            lambda: {k: _render_tree(v, str(k), lambda p, s: _render_one(p, s, context)) for k, v in fields.items()},
        )
    finally:
        _BUDGET.reset(token)


def check_limits(fields: Mapping[str, Any]) -> None:
    """Render ``fields`` with no data (every variable empty) and ``SAMPLE_RECIPIENT``: the check made
    when a template is saved. Raises ``TemplateLimitError`` for a template over a limit whatever the
    data, and ``TemplateError`` for a ``recipient`` field that does not exist (``recipient.nmae``)."""
    context = {RECIPIENT: recipient_view(SAMPLE_RECIPIENT)}
    token = _rendering(None)
    try:
        for path, source in _walk(fields, ""):
            if not _is_template(source):
                continue
            found: list[str] = []
            recording = _MISSING.set(found)
            try:
                _render_bounded(_compile_field(path, source, recording=True), context, path)
            except TemplateLimitError:
                raise
            except _Limit as exc:
                raise TemplateLimitError(
                    f"template in '{path}' is over a limit: {exc}", field=path, limit=exc.limit
                ) from exc
            except RecursionError as exc:
                raise TemplateLimitError(
                    f"template in '{path}' is over a limit: recursion too deep", field=path, limit="depth"
                ) from exc
            except Exception:  # noqa: S112 - with no data, anything else may well be fine with data
                continue
            finally:
                _MISSING.reset(recording)
            unknown = [n.removeprefix(f"{RECIPIENT}.") for n in found if n.startswith(f"{RECIPIENT}.")]
            if unknown:
                raise TemplateError(
                    f"a recipient has no '{unknown[0]}' in '{path}' (it has {', '.join(RECIPIENT_FIELDS)})",
                    field=path,
                    variable=f"{RECIPIENT}.{unknown[0]}",
                )
    finally:
        _BUDGET.reset(token)


# -- per recipient ---------------------------------------------------------------------------------


def uses_recipient(fields: Any) -> bool:
    """Whether any string in ``fields`` is a template that reads ``recipient``."""
    return any(_uses_recipient(source) for _, source in _walk(fields, ""))


@lru_cache(maxsize=4096)
def _reads(source: str) -> frozenset[str]:
    if not _is_template(source):
        return frozenset()
    try:
        return frozenset(find_undeclared_variables(_ENVS[False, False].parse(source)))
    except (TemplateSyntaxError, RecursionError, SyntaxError, MemoryError):
        return frozenset()  # rendering it names the error


def uses_variables(fields: Any, names: frozenset[str]) -> bool:
    """Whether any string in ``fields`` is a template that reads one of the variables ``names``."""
    return any(not _reads(source).isdisjoint(names) for _, source in _walk(fields, ""))


def prepare_fields(
    fields: Mapping[str, Any], data: Mapping[str, Any], *, seconds: float | None = None
) -> dict[str, Any]:
    """Render ``fields`` once for a whole notification: a field that uses ``recipient`` is checked
    against ``SAMPLE_RECIPIENT`` and kept as a marker for ``render_for_recipient``. Data with its own
    ``recipient`` key keeps it (templates then render once, with that value)."""
    if RECIPIENT in data:
        return render_fields(fields, data, seconds=seconds)
    sample = {**data, RECIPIENT: recipient_view(SAMPLE_RECIPIENT)}

    def one(path: str, source: str) -> Any:
        if _uses_recipient(source):
            _render_one(path, source, sample)
            return {_MARKER: source}
        return _render_one(path, source, data)

    token = _rendering(seconds)
    try:
        return _with_all_missing(fields, sample, lambda: {k: _render_tree(v, str(k), one) for k, v in fields.items()})
    finally:
        _BUDGET.reset(token)


def _finish(value: Any, path: str, render: Callable[[str, str], Any]) -> Any:
    if isinstance(value, Mapping):
        if _MARKER in value and len(value) == 1:
            return render(path, value[_MARKER])
        return {k: _finish(v, f"{path}.{k}" if path else str(k), render) for k, v in value.items()}
    if isinstance(value, list):
        return [_finish(v, f"{path}.{i}", render) for i, v in enumerate(value)]
    return value


def render_for_recipient(
    prepared: Mapping[str, Any],
    data: Mapping[str, Any],
    profile: Mapping[str, Any],
    *,
    seconds: float | None = None,
) -> tuple[dict[str, Any], list[TemplateError]]:
    """A prepared set finished for one user (see ``recipient_view``), and what failed. A field that
    fails for this user (over a limit with their data) is left empty and its error returned, never
    raised, so one recipient's odd profile never stops a fan-out nor fails a send."""
    if not has_recipient_fields(prepared):
        return dict(prepared), []
    context = {**data, RECIPIENT: recipient_view(profile)}
    token = _rendering(seconds)

    def one(path: str, source: str) -> str:
        try:
            return _render_one(path, source, context)
        except TemplateError as exc:
            failures.append(exc)
            return ""

    failures: list[TemplateError] = []
    try:
        out: dict[str, Any] = _finish(prepared, "", one)
    finally:
        _BUDGET.reset(token)
    return out, failures
