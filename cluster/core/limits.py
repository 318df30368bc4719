"""What one entry may store and do: data limits and the deterministic step budget.

Everything the apply commits must encode (snapshots, reads, the event feed):
data is checked on the result, after merge, `set` and templates, not only on
the request. Work is counted in steps, never in wall time, so every node
refuses the same entry at the same point; a refused entry changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import orjson

from schema_lang.limits import (
    MAX_DATA_BYTES,
    MAX_ENTRY_STEPS,
    MAX_INT,
    MAX_NESTING,
    MIN_INT,
)

from .outcome import Rejected

MAX_ERROR_CHARS = 4_096  # a task's `error` text


class BudgetExceeded(Rejected):
    """An entry that needs more steps than the budget: the whole entry is refused."""


class Budget(msgspec.Struct, gc=False):
    """Steps taken by one entry; shared by the entry's `Tx` and all its children.

    A (mutable) msgspec struct: one is built for every entry, in C."""

    limit: int = MAX_ENTRY_STEPS
    used: int = 0
    priced: int = 0  # the part the cost model prices (schema_lang/cost.py)

    def charge(self, steps: int) -> None:
        """Priced steps: rule checks, set fields, then steps, applied transitions."""
        self.priced += steps
        self.used += steps
        if self.used > self.limit:
            self.meter(0)  # raises BudgetExceeded

    def meter(self, steps: int) -> None:
        """Any step, also those in proportion to the data read (not priced)."""
        self.used += steps
        if self.used > self.limit:
            raise BudgetExceeded(
                "invalid_request",
                f"applying this request takes more than {self.limit:,} steps (the per-entry"
                " step budget); split the batch or simplify the machine's then chains and rules",
            )

    @property
    def left(self) -> int:
        return self.limit - self.used


_SCALARS = (str, bool, type(None))
_NESTED = dict | list  # built once (a union in the walk is built per item)


def value_problem(value: Any) -> str | None:
    """Why a JSON value cannot be stored (nesting, integer range, non-JSON types), or None."""
    if value.__class__ is dict and _plainly_flat(value):
        return None
    return _walk_problem(value)


def _plainly_flat(value: dict[Any, Any]) -> bool:
    """The common request: a flat mapping of strings, booleans and small integers, decided
    in one loop (False: anything else, which takes the full walk)."""
    for key, item in value.items():
        if key.__class__ is not str:
            return False
        if item.__class__ in _SCALARS:
            continue
        if item.__class__ is not int or not MIN_INT <= item <= MAX_INT:
            return False
    return True


def _walk_problem(value: Any) -> str | None:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, _NESTED):
            if depth + 1 > MAX_NESTING:
                return f"is nested deeper than {MAX_NESTING} levels (the nesting limit)"
            children = item.values() if isinstance(item, dict) else item
            if isinstance(item, dict) and not all(isinstance(k, str) for k in item):
                return "has a key that is not a string"
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        elif isinstance(item, int):
            if not MIN_INT <= item <= MAX_INT:
                shown = str(item) if item.bit_length() < 200 else f"an integer of {item.bit_length()} bits"
                return f"holds {shown}, beyond the integer limit of ±2^63"
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                return "holds a number that is not finite"
        else:
            return f"holds a {type(item).__name__}, which is not JSON"
    return None


def encoded_size(value: Any) -> int:
    return len(orjson.dumps(value))


def check_data(value: Any, what: str) -> int:
    """Refuses (4xx, naming the limit) a value that could not be stored and read back.

    Returns its size in bytes as JSON."""
    if value.__class__ is not dict or not _plainly_flat(value):  # value_problem's fast path
        problem = _walk_problem(value)
        if problem is not None:
            raise Rejected("invalid_request", f"{what} {problem}")
    size = len(orjson.dumps(value))  # encoded_size, inline: called for every transition
    if size > MAX_DATA_BYTES:
        raise too_large(what, size)
    return size


def check_merged(data: dict[str, Any], what: str | Callable[[], str], fresh: frozenset[str]) -> int:
    """`check_data` of an object's resulting data whose values, but for the `fresh`
    keys, come from data that already passed it (the stored data, the checked
    payload): the merged top-level mapping is as deep as its deepest value, so only
    the fresh values are walked; the size is measured whole. The same refusal, with
    the same message, as `check_data(data, what)` (the walk visits the fresh values
    in the order the whole walk would). `what` may be a function that says it: it is
    called only to word a refusal (an f-string per transition cost more than the check)."""
    if fresh:
        problem = value_problem({k: v for k, v in data.items() if k in fresh})
        if problem is not None:
            raise Rejected("invalid_request", f"{_said(what)} {problem}")
    size = len(orjson.dumps(data))
    if size > MAX_DATA_BYTES:
        raise too_large(_said(what), size)
    return size


def _said(what: str | Callable[[], str]) -> str:
    return what if isinstance(what, str) else what()


def too_large(what: str, size: int) -> Rejected:
    return Rejected(
        "payload_too_large",
        f"{what} would be {size:,} bytes as JSON; the limit for an object's data is"
        f" {MAX_DATA_BYTES:,} bytes",
    )


def check_text(text: str | None, what: str, limit: int = MAX_ERROR_CHARS) -> None:
    if text is not None and len(text) > limit:
        raise Rejected(
            "payload_too_large",
            f"{what} is {len(text):,} characters; the limit is {limit:,}",
        )
