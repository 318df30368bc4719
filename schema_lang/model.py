"""The typed, compiled form of a machine definition.

Everything here is built once per revision by `schema_lang.compile_machine` and is
then read-only. Conditions and templates are plain closures: evaluating a guard
never walks the YAML tree again. The engine (`cluster.core`) depends only on this
module, never on how a definition was parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

DataMode = Literal["merge", "replace", "keep"]


class ObjectView(msgspec.Struct, frozen=True, gc=False):
    """What a template may know about the object: `${object.id}` and friends.

    Views and contexts are msgspec structs: built in C for every transition (a frozen
    dataclass's `__init__` cost more than the guards it feeds)."""

    id: str
    version: int
    state: str | None


class EvalContext(msgspec.Struct, frozen=True, gc=False):
    """Inputs of one guard or template evaluation.

    `dst` is the request's payload, `src` the object's current data (empty on
    creation), `now` the entry's timestamp as an ISO-8601 UTC string with
    milliseconds (`2026-11-22T07:00:00.000Z`), never the local clock.
    """

    dst: Mapping[str, Any]
    src: Mapping[str, Any]
    obj: ObjectView
    now: str
    # the engine's step meter: rule checks charge it in proportion to the data they
    # read (a regex over 60 KiB costs more than over 6 bytes); None = not metered
    meter: Callable[[int], None] | None = None


@dataclass(frozen=True, slots=True)
class GuardFailure:
    """One failed rule: `path` is the dotted field path (`$dst.owner`), `rule` the keyword."""

    path: str
    rule: str
    message: str

    def as_detail(self) -> dict[str, str]:
        return {"path": self.path, "rule": self.rule, "message": self.message}


# A compiled condition returns the failures; an empty list means it passed.
Condition = Callable[[EvalContext], list[GuardFailure]]
# A compiled template returns its value: a single `${expr}` keeps the expression's
# type, anything else renders to a string.
Template = Callable[[EvalContext], Any]


@dataclass(frozen=True, slots=True)
class Follows:
    """A history condition over transition names applied since the last restart."""

    test: Callable[[frozenset[str]], bool]
    description: str  # e.g. "all_of(assign, schedule)", shown in errors


@dataclass(frozen=True, slots=True)
class Votes:
    voters: tuple[str, ...] | None  # None = any voter
    quorum: int | Literal["majority", "all"]
    timeout_ms: int | None

    def required(self) -> int:
        """Approvals needed; for `voters: any` majority/all count as 1."""
        if isinstance(self.quorum, int):
            return self.quorum
        if self.voters is None:
            return 1
        n = len(self.voters)
        return n if self.quorum == "all" else n // 2 + 1


@dataclass(frozen=True, slots=True)
class ThenStep:
    transition: str
    condition: Condition | None  # `if:` ({$src: ..., $dst: ...}); None = always
    cost: int = 0  # engine steps to evaluate `if` (cost.py)


@dataclass(frozen=True, slots=True)
class TransitionDef:
    """One candidate definition of a transition name (a name maps to a tuple of these)."""

    name: str
    creates: bool  # from: null
    any_source: bool  # from: "*" (any non-terminal state)
    sources: frozenset[str]  # empty when creates or any_source
    to: str | None  # None = stay in the same state
    dst: Condition | None = None
    src: Condition | None = None
    requires: tuple[str, ...] = ()
    follows: Follows | None = None
    restart: bool = False
    data_mode: DataMode = "merge"
    set_fields: tuple[tuple[str, Template], ...] = ()
    votes: Votes | None = None
    then: tuple[ThenStep, ...] = ()
    emit: str | None = None
    # engine steps to evaluate this candidate (guards, `set`, the invariant); cost.py
    cost: int = 0

    def leaves(self, state: str | None, terminal: bool) -> bool:
        """Whether this definition's `from` matches the object's current state."""
        if state is None:
            return self.creates
        if self.any_source:
            return not terminal
        return state in self.sources


@dataclass(frozen=True, slots=True)
class TaskDef:
    name: str
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Timeout:
    after_ms: int
    transition: str


@dataclass(frozen=True, slots=True)
class StateDef:
    name: str
    data: Condition | None = None
    terminal: bool = False
    remove: bool = False
    timeout: Timeout | None = None
    tasks: tuple[TaskDef, ...] = ()


@dataclass(frozen=True, slots=True)
class MachineDef:
    name: str
    revision: str  # "sha256:" + hex digest of the canonical JSON form
    canonical: Mapping[str, Any]  # the definition as plain JSON data (sorted keys when dumped)
    states: Mapping[str, StateDef]
    transitions: Mapping[str, tuple[TransitionDef, ...]]
    description: str = ""
    history: int = 100
    priority: str = "normal"  # "high": its requests use the high admission lane (cluster/api/admission.py)
    # (transition name, state) -> its candidates leaving that state, for creation (None) and
    # every non-terminal state a candidate leaves: what the engine's `choose` would select,
    # found once per revision (a name and state missing here are refused by `choose`)
    leaving: Mapping[tuple[str, str | None], tuple[TransitionDef, ...]] = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # one pass over the candidates in order, each added under the states it leaves:
        # as many steps as edges (MAX_EDGES), not transition names × states
        open_states = [name for name, s in self.states.items() if not s.terminal]
        leaving: dict[tuple[str, str | None], list[TransitionDef]] = {}
        for name, defs in self.transitions.items():
            for d in defs:
                if d.creates:
                    starts: Iterable[str | None] = (None,)
                elif d.any_source:
                    starts = open_states
                else:
                    starts = [s for s in d.sources if s in self.states
                              and not self.states[s].terminal]
                for state in starts:
                    leaving.setdefault((name, state), []).append(d)
        # frozen: set once, here
        object.__setattr__(self, "leaving", {k: tuple(v) for k, v in leaving.items()})

    def allowed_from(self, state: str | None) -> list[str]:
        """Names of transitions whose `from` matches `state`, sorted, for error messages."""
        terminal = state is not None and self.states[state].terminal
        return sorted(
            name
            for name, defs in self.transitions.items()
            if any(d.leaves(state, terminal) for d in defs)
        )
