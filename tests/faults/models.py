"""Sequential specifications of fsmcluster objects, for the linearizability checker.

A model describes one object (the checker partitions a history by key).
`step(state, op)` answers whether `op`, with its recorded output, is legal when
applied to `state`, and the state after it. States are hashable (the checker
memoises on them). For an indeterminate op (no output) a model returns the
effect the op would have, or `(False, state)` when it would have none: the
checker itself considers omitting an indeterminate op.

Outputs are plain values, as a workload would record them from HTTP answers:
`("ok", version)` for an applied transition, `(code, detail)` or `code` for a
refusal (`"version_conflict"`, `"object_not_found"`, `"object_exists"`,
`"transition_not_allowed"`, ...).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any, Protocol

from tests.faults.history import Operation

Step = tuple[bool, Any]


class Model(Protocol):
    def init(self) -> Hashable: ...

    def step(self, state: Any, op: Operation) -> Step: ...


def freeze(value: Any) -> Hashable:
    """A hashable, order-insensitive form of JSON-like data."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def status_of(output: Any) -> Any:
    """`"ok"` from `("ok", 3)`, `"version_conflict"` from `("version_conflict", 2)`."""
    return output[0] if isinstance(output, tuple) and output else output


def detail_of(output: Any) -> Any:
    return output[1] if isinstance(output, tuple) and len(output) > 1 else None


class VersionedRegister:
    """An object `(state_name, version, data)` or absent (`None`); version 0 when absent.

    Ops:
    - `read`: output `(state_name, version)`, `(state_name, version, data)` or `"not_found"`.
    - `transition`: input `(name, expected_version | None, target_state | None[, data])`;
      target `None` keeps the current state. An applied transition outputs
      `("ok", new_version)` with `new_version == version + 1` (1 for a creation).

    `transitions` optionally maps a transition name to the states it may start
    from (`None` in the set = creates the object). Without it any transition
    applies to an existing object and, with a target, creates an absent one.
    A refusal has no effect and is legal only when its reason holds:
    `version_conflict` when expected != version (detail, when given, is the
    actual version), `object_not_found` when absent, `object_exists` when
    present, `transition_not_allowed` when the table forbids it (always legal
    without a table). Other refusal codes are accepted as having no effect.
    """

    def __init__(
        self,
        transitions: Mapping[str, Iterable[str | None]] | None = None,
        data_mode: str = "merge",
    ) -> None:
        if data_mode not in ("merge", "replace"):
            raise ValueError(f"data_mode must be 'merge' or 'replace', not {data_mode!r}")
        self.transitions = (
            None if transitions is None else {k: frozenset(v) for k, v in transitions.items()}
        )
        self.data_mode = data_mode

    def init(self) -> Hashable:
        return None

    def step(self, state: Any, op: Operation) -> Step:
        if op.kind == "read":
            return self._read(state, op), state
        if op.kind == "transition":
            return self._transition(state, op)
        raise ValueError(
            f"VersionedRegister has no op kind {op.kind!r} (expected read, transition)"
        )

    def _read(self, state: Any, op: Operation) -> bool:
        if op.indeterminate:
            return False  # a read has no effect; omitting it is always possible
        if state is None:
            return bool(op.output == "not_found")
        if not isinstance(op.output, tuple) or len(op.output) not in (2, 3):
            return False
        name, version, data = state
        if len(op.output) == 3:
            return bool(op.output[:2] == (name, version) and freeze(op.output[2]) == data)
        return bool(op.output == (name, version))

    def _transition(self, state: Any, op: Operation) -> Step:
        name, expected, target, *rest = op.input
        version = 0 if state is None else state[1]
        allowed = self._allowed(state, name, target)
        version_ok = expected is None or expected == version
        if op.indeterminate:
            if allowed and version_ok:
                return True, self._applied(state, target, rest)
            return False, state
        code = status_of(op.output)
        if code == "ok":
            legal = allowed and version_ok and detail_of(op.output) == version + 1
            return legal, (self._applied(state, target, rest) if legal else state)
        if code == "version_conflict":
            actual = detail_of(op.output)
            return (not version_ok and actual in (None, version)), state
        if code == "object_not_found":
            return state is None, state
        if code == "object_exists":
            return state is not None, state
        if code == "transition_not_allowed":
            return (self.transitions is None or not allowed), state
        return True, state

    def _allowed(self, state: Any, name: str, target: str | None) -> bool:
        if self.transitions is None:
            return state is not None or target is not None
        sources = self.transitions.get(name, frozenset())
        return (None if state is None else state[0]) in sources and (
            state is not None or target is not None
        )

    def _applied(self, state: Any, target: str | None, rest: list[Any]) -> Hashable:
        old_name, version, old_data = (None, 0, ()) if state is None else state
        data = old_data
        if rest and rest[0] is not None:
            new = dict(old_data) if self.data_mode == "merge" else {}
            new.update((str(k), freeze(v)) for k, v in rest[0].items())
            data = freeze(new)
        return (target if target is not None else old_name, version + 1, data)


class LockModel:
    """A lock whose fencing token is the lock object's version.

    State `(holder | None, version)`. Ops, input = owner:
    - `acquire`: `("ok", token)` only when free, with token == version + 1
      (or only token > version when `exact=False`, for locks whose version other
      transitions also bump); any refusal only when held.
    - `release` / `renew`: `("ok", version')` only by the holder; any refusal only
      when the op's owner is not the holder.
    - `read`: output `(holder | None, version)`.
    Lease expiry is not modelled: workloads use leases longer than the test.
    """

    def __init__(self, initial_version: int = 0, exact: bool = True) -> None:
        self.initial_version = initial_version
        self.exact = exact

    def init(self) -> Hashable:
        return (None, self.initial_version)

    def step(self, state: Any, op: Operation) -> Step:
        holder, version = state
        if op.kind == "read":
            return (not op.indeterminate and op.output == state), state
        if op.kind == "acquire":
            return self._change(state, op, may=holder is None, new_holder=op.input)
        if op.kind == "release":
            return self._change(state, op, may=holder == op.input, new_holder=None)
        if op.kind == "renew":
            return self._change(state, op, may=holder == op.input, new_holder=holder)
        raise ValueError(
            f"LockModel has no op kind {op.kind!r} (expected acquire, release, renew, read)"
        )

    def _change(self, state: Any, op: Operation, may: bool, new_holder: Any) -> Step:
        version = state[1]
        if op.indeterminate:
            return (True, (new_holder, version + 1)) if may else (False, state)
        if status_of(op.output) != "ok":
            return not may, state
        token = detail_of(op.output)
        if not may or not isinstance(token, int):
            return False, state
        fresh = token == version + 1 if self.exact else token > version
        return (True, (new_holder, token)) if fresh else (False, state)


class Dedup:
    """Accept-once per message id: the first `create` is `"ok"`, later ones `"object_exists"`.

    State: frozenset of accepted ids. A `create` op's input is the message id
    (`None` = the op's key). `contains` outputs a bool. Other refusal codes are
    accepted as having no effect.
    """

    def init(self) -> Hashable:
        return frozenset()

    def step(self, state: Any, op: Operation) -> Step:
        message = op.key if op.input is None else op.input
        seen = message in state
        if op.kind == "contains":
            return (not op.indeterminate and op.output is seen), state
        if op.kind != "create":
            raise ValueError(f"Dedup has no op kind {op.kind!r} (expected create, contains)")
        if op.indeterminate:
            return (False, state) if seen else (True, state | {message})
        code = status_of(op.output)
        if code == "ok":
            return (False, state) if seen else (True, state | {message})
        if code == "object_exists":
            return seen, state
        return True, state
