"""The functions templates may call, and how template values render as text.

`expressions.py` owns the grammar and compilation; this module owns what each
function does at run time. Every function is total over JSON values: a missing
value (MISSING) counts as "", and a value a function cannot handle raises
TemplateRuntimeError, which is deterministic for the same data on every node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .limits import MAX_INT, MAX_TEXT_CHARS, MIN_INT

MAX_HASHED_CHARS = 16 * MAX_TEXT_CHARS  # what one sha256 call may read


class TemplateRuntimeError(ValueError):
    """A function applied to a value it cannot handle; deterministic for the same data."""


class _Missing:
    """The value of a reference to an absent field."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def render_text(value: Any) -> str:
    """The text of a value inside a template: JSON spelling, strings as is, null as ""."""
    if value is MISSING or value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return orjson.dumps(value, default=plain_json, option=orjson.OPT_SORT_KEYS).decode()


def plain_json(value: Any) -> Any:
    """orjson's fallback for read-only views of the data (e.g. MappingProxyType)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | frozenset):
        return list(value)
    raise TypeError(f"cannot render {type(value).__name__}")


def checked_text(text: str) -> str:
    if len(text) > MAX_TEXT_CHARS:
        raise TemplateRuntimeError(_too_long())
    return text


def _too_long() -> str:
    return f"a computed text would be longer than {MAX_TEXT_CHARS:,} characters (the text limit)"


def joined_text(parts: Iterable[str], limit: int = MAX_TEXT_CHARS) -> str:
    """The concatenation, refused as soon as it passes `limit` (never built in full)."""
    out: list[str] = []
    size = 0
    for part in parts:
        size += len(part)
        if size > limit:
            raise TemplateRuntimeError(_too_long())
        out.append(part)
    return "".join(out)


def _checked_int(value: int) -> int:
    if not MIN_INT <= value <= MAX_INT:
        raise TemplateRuntimeError("the result is beyond the integer limit of ±2^63")
    return value


def _integer(value: Any, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TemplateRuntimeError(f"{what} must be an integer, not {render_text(value)!r}")


def _substr(subject: Any, start: Any, end: Any = None) -> str:
    text = render_text(subject)
    begin = _integer(start, "substr start")
    return text[begin:] if end is None else text[begin : _integer(end, "substr end")]


def _len(value: Any) -> int:
    if value is MISSING or value is None:
        return 0
    if isinstance(value, str | list | dict):
        return len(value)
    raise TemplateRuntimeError(f"len needs a string, list or object, not {render_text(value)!r}")


def _hex(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return format(value, "x")
    if value is MISSING or value is None or isinstance(value, str):
        raw = render_text(value).encode()
        if 2 * len(raw) > MAX_TEXT_CHARS:  # refuse before building it
            raise TemplateRuntimeError(_too_long())
        return raw.hex()
    raise TemplateRuntimeError(f"hex needs an integer or a string, not {render_text(value)!r}")


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return _checked_int(int(value))
    text = render_text(value).strip()
    if isinstance(value, str) and 0 < len(text) <= 100:
        try:
            number = int(text, 10)
        except ValueError:
            pass
        else:
            return _checked_int(number)
    raise TemplateRuntimeError(f"int cannot convert {render_text(value)!r} to an integer")


def _sha256(*values: Any) -> str:
    digest = hashlib.sha256()
    read = 0
    for value in values:
        text = render_text(value)
        read += len(text)
        if read > MAX_HASHED_CHARS:
            raise TemplateRuntimeError(f"sha256 would read more than {MAX_HASHED_CHARS:,} characters")
        digest.update(text.encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Function:
    call: Callable[..., Any]
    min_args: int
    max_args: int | None  # None = any number


FUNCTIONS: dict[str, Function] = {
    "substr": Function(_substr, 2, 3),
    "lower": Function(lambda v: render_text(v).lower(), 1, 1),
    "upper": Function(lambda v: render_text(v).upper(), 1, 1),
    "len": Function(_len, 1, 1),
    "concat": Function(lambda *vs: joined_text(render_text(v) for v in vs), 0, None),
    "sha256": Function(_sha256, 1, None),
    "hex": Function(_hex, 1, 1),
    "int": Function(_int, 1, 1),
    "str": Function(render_text, 1, 1),
}


def lookup(data: Any, fields: tuple[str, ...] | list[str]) -> Any:
    """The value at a dotted path; MISSING when any step is absent or not a container."""
    value = data
    for name in fields:
        # decoded JSON is a dict: the exact class first, the ABC check (slow) only if not
        if value.__class__ is dict or isinstance(value, Mapping):
            value = value.get(name, MISSING)
        elif isinstance(value, list) and name.isdigit() and int(name) < len(value):
            value = value[int(name)]
        else:
            return MISSING
        if value is MISSING:
            return MISSING
    return value
