"""Linearizability checker for histories of fsmcluster client operations.

The search is Wing & Gong's, with Lowe's memoisation (as in Knossos and
Porcupine): the history's call and return events form a time-ordered linked
list; the search repeatedly linearizes a pending call that precedes the first
remaining return, backtracks when a return is reached whose call was not
linearized, and never revisits a (linearized set, model state) pair. Because
linearizability is local (P-compositional), the history is partitioned by
object key and each key is checked on its own.

Indeterminate operations (never completed) return at +infinity: they may be
linearized at any point after their invocation, or never; the search succeeds
as soon as every completed operation is linearized. Events with equal times are
treated as concurrent (a call sorts before a return at the same time).

The search is bounded: at most `max_steps` model steps per key. A key whose
search runs out is reported as verdict "unknown" (`ok` False), never as a pass.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from tests.faults.history import History, Operation
from tests.faults.models import Dedup, LockModel, Model, VersionedRegister

__all__ = [
    "DEFAULT_MAX_STEPS",
    "Dedup",
    "History",
    "LockModel",
    "Model",
    "Operation",
    "Result",
    "VersionedRegister",
    "check",
]

DEFAULT_MAX_STEPS = 1_000_000
LINEARIZABLE = "linearizable"
NOT_LINEARIZABLE = "not_linearizable"
UNKNOWN = "unknown"
_SHOWN_PREFIX = 10
_SHOWN_CANDIDATES = 10


@dataclass(frozen=True)
class Result:
    """`ok` only for a proven linearizable history; `key` is the first key that failed."""

    ok: bool
    key: Hashable | None
    explanation: str
    ops_checked: int
    verdict: str = LINEARIZABLE
    steps: int = 0


@dataclass(frozen=True)
class _Search:
    verdict: str
    steps: int
    best: tuple[int, ...]  # op indexes of the longest linearization found, in order


class _Event:
    __slots__ = ("index", "is_call", "match", "prev", "next")

    def __init__(self, index: int, is_call: bool) -> None:
        self.index = index
        self.is_call = is_call
        self.match: _Event | None = None
        self.prev: _Event | None = None
        self.next: _Event | None = None


def check(history: Iterable[Operation], model: Model, max_steps: int = DEFAULT_MAX_STEPS) -> Result:
    """Check `history` against `model`, key by key (in order of first invocation)."""
    ops = sorted(history, key=lambda op: (op.invoke, op.id))
    for op in ops:
        _validate(op)
    by_key: dict[Hashable, list[Operation]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    checked = steps = 0
    unknown: tuple[Hashable, str] | None = None
    for key, key_ops in by_key.items():
        search = _search(key_ops, model, max_steps)
        checked += len(key_ops)
        steps += search.steps
        if search.verdict == NOT_LINEARIZABLE:
            text = _explain_failure(key, key_ops, model, search)
            return Result(False, key, text, checked, NOT_LINEARIZABLE, steps)
        if search.verdict == UNKNOWN and unknown is None:
            unknown = key, _explain_gave_up(key, key_ops, search, max_steps)
    if unknown is not None:
        return Result(False, unknown[0], unknown[1], checked, UNKNOWN, steps)
    text = f"{checked} operations on {len(by_key)} keys are linearizable"
    return Result(True, None, text, checked, LINEARIZABLE, steps)


def _validate(op: Operation) -> None:
    if not math.isfinite(op.invoke):
        raise ValueError(f"operation {op.id}: invocation time must be finite, got {op.invoke}")
    if op.complete is not None and not (math.isfinite(op.complete) and op.complete >= op.invoke):
        raise ValueError(
            f"operation {op.id}: completion time {op.complete} must be finite and"
            f" not before its invocation {op.invoke}"
        )


def _event_list(ops: list[Operation]) -> _Event:
    """Time-ordered doubly linked list of call/return events behind a head sentinel."""
    timed: list[tuple[float, int, int, _Event]] = []
    for i, op in enumerate(ops):
        call, ret = _Event(i, True), _Event(i, False)
        call.match = ret
        end = math.inf if op.complete is None else op.complete
        timed += [(op.invoke, 0, i, call), (end, 1, i, ret)]
    timed.sort(key=lambda t: t[:3])
    head = prev = _Event(-1, False)
    for *_, event in timed:
        prev.next, event.prev = event, prev
        prev = event
    return head


def _lift(call: _Event) -> None:
    for event in (call, call.match):
        assert event is not None and event.prev is not None
        event.prev.next = event.next
        if event.next is not None:
            event.next.prev = event.prev


def _unlift(call: _Event) -> None:
    for event in (call.match, call):
        assert event is not None and event.prev is not None
        event.prev.next = event
        if event.next is not None:
            event.next.prev = event


def _search(ops: list[Operation], model: Model, max_steps: int) -> _Search:
    head = _event_list(ops)
    remaining = sum(1 for op in ops if not op.indeterminate)
    state: Any = model.init()
    linearized = 0
    path: tuple[int, Any] | None = None  # cons list of linearized op indexes, newest first
    stack: list[tuple[_Event, Any, Any, bool]] = []  # (call, state before, path before, forced)
    seen: set[tuple[int, Any]] = set()
    best, best_depth, steps = path, 0, 0
    event = head.next
    while remaining:
        assert event is not None  # a completed op's return is always ahead
        if not event.is_call:
            while True:  # backtrack to the latest choice that was not forced
                if not stack:
                    return _Search(NOT_LINEARIZABLE, steps, _unwind(best))
                event, state, path, forced = stack.pop()
                linearized &= ~(1 << event.index)
                remaining += not ops[event.index].indeterminate
                _unlift(event)
                if not forced:
                    break
            event = event.next
            continue
        if steps >= max_steps:
            return _Search(UNKNOWN, steps, _unwind(best))
        steps += 1
        legal, new_state = model.step(state, ops[event.index])
        memo = (linearized | (1 << event.index), new_state)
        if not legal or memo in seen:
            event = event.next
            continue
        seen.add(memo)
        # A completed op that is legal here and leaves the state as it is (a read, a
        # refusal) may be linearized now without loss: any linearization that places it
        # later also works with it here (its callers all returned already, and it changes
        # no state wherever it goes: true of reads and refusals in every model here). So
        # it is not a choice, and backtracking steps over it. Without this, every subset
        # of concurrent refusals is tried before an impossible op is blamed, and a long
        # history exhausts the search budget (verdict unknown).
        forced = new_state == state and not ops[event.index].indeterminate
        stack.append((event, state, path, forced))
        linearized, state, path = memo[0], new_state, (event.index, path)
        remaining -= not ops[event.index].indeterminate
        _lift(event)
        if len(stack) > best_depth:
            best, best_depth = path, len(stack)
        event = head.next
    return _Search(LINEARIZABLE, steps, _unwind(path))


def _unwind(path: tuple[int, Any] | None) -> tuple[int, ...]:
    order: list[int] = []
    while path is not None:
        order.append(path[0])
        path = path[1]
    return tuple(reversed(order))


def _explain_gave_up(key: Hashable, ops: list[Operation], search: _Search, max_steps: int) -> str:
    return (
        f"key {key!r}: search gave up after {search.steps} steps (max_steps={max_steps})"
        f" with at most {len(search.best)} of {len(ops)} operations linearized;"
        " the history is neither proven linearizable nor refuted"
    )


def _explain_failure(key: Hashable, ops: list[Operation], model: Model, search: _Search) -> str:
    state: Any = model.init()
    for index in search.best:
        state = model.step(state, ops[index])[1]
    placed = set(search.best)
    pending = [op for i, op in enumerate(ops) if i not in placed]
    deadline = min(op.complete for op in pending if op.complete is not None)
    blocked = next(op for op in pending if op.complete == deadline)
    lines = [
        f"key {key!r}: not linearizable ({len(ops)} operations, {search.steps} steps).",
        f"Longest linearizable prefix found: {len(search.best)} operations"
        f" (last {_SHOWN_PREFIX} shown), leaving the model in state {state!r}:",
    ]
    lines += [f"  {ops[i].describe()}" for i in search.best[-_SHOWN_PREFIX:]]
    lines.append(
        f"No operation can be placed next: {blocked.describe()} completed at"
        f" {deadline:.6g}, and every candidate before it fails:"
    )
    for op in [op for op in pending if op.invoke <= deadline][:_SHOWN_CANDIDATES]:
        legal = model.step(state, op)[0]
        why = "legal here, but no continuation works" if legal else "illegal in this state"
        lines.append(f"  {op.describe()}  <- {why}")
    return "\n".join(lines)
