"""Raft log entries: the commands the engine applies, and their wire encoding.

An entry is stamped by the node that proposes it (time in ms since the epoch,
request id, optional idempotency key and principal); the Raft index is added by
the adapter when the entry is applied. Encoding is versioned JSON (orjson) so a
log written by one version is readable by the next; an entry that cannot be
decoded raises `CorruptEntry`, which halts the node rather than diverging.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import orjson

FORMAT_VERSION = 1


class CorruptEntry(Exception):
    """A log entry that no version of the code can decode: the node must stop."""


@dataclass(frozen=True, slots=True)
class PutMachine:
    kind: ClassVar[str] = "put_machine"
    name: str
    source: str  # the definition text (YAML or JSON) as the user sent it


@dataclass(frozen=True, slots=True)
class DeleteMachine:
    kind: ClassVar[str] = "delete_machine"
    name: str


@dataclass(frozen=True, slots=True)
class Transition:
    kind: ClassVar[str] = "transition"
    machine: str
    id: str
    transition: str
    data: dict[str, Any] | None = None
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteObject:
    kind: ClassVar[str] = "delete_object"
    machine: str
    id: str


@dataclass(frozen=True, slots=True)
class Vote:
    kind: ClassVar[str] = "vote"
    machine: str
    id: str
    voter: str
    approve: bool
    change: str


@dataclass(frozen=True, slots=True)
class Withdraw:
    kind: ClassVar[str] = "withdraw"
    machine: str
    id: str


@dataclass(frozen=True, slots=True)
class TaskReport:
    kind: ClassVar[str] = "task_report"
    machine: str
    id: str
    task: str
    status: str  # "completed" | "failed"
    error: str | None = None
    data: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RetryTasks:
    kind: ClassVar[str] = "retry_tasks"
    machine: str
    id: str
    status: str  # "failed" | "pending"


@dataclass(frozen=True, slots=True)
class Batch:
    kind: ClassVar[str] = "batch"
    operations: tuple[Transition, ...]
    atomic: bool = False


@dataclass(frozen=True, slots=True)
class Tick:
    """Fires every deadline (state timeout, vote expiry) due at the entry's time."""

    kind: ClassVar[str] = "tick"


@dataclass(frozen=True, slots=True)
class Barrier:
    """A no-op whose application proves a node has applied everything before it."""

    kind: ClassVar[str] = "barrier"


@dataclass(frozen=True, slots=True)
class Member:
    """A member's HTTP address and name, published through the log (SPEC 4.8).

    Each node proposes its own once it sees a leader; `http=None` forgets a
    removed member. Raft membership itself is pysyncobj's, not this entry's.
    """

    kind: ClassVar[str] = "member"
    raft: str
    http: str | None = None
    name: str | None = None


Command = (
    PutMachine
    | DeleteMachine
    | Transition
    | DeleteObject
    | Vote
    | Withdraw
    | TaskReport
    | RetryTasks
    | Batch
    | Tick
    | Barrier
    | Member
)

COMMANDS: dict[str, type] = {
    c.kind: c
    for c in (
        PutMachine,
        DeleteMachine,
        Transition,
        DeleteObject,
        Vote,
        Withdraw,
        TaskReport,
        RetryTasks,
        Batch,
        Tick,
        Barrier,
        Member,
    )
}


@dataclass(frozen=True, slots=True)
class Entry:
    command: Command
    at_ms: int  # proposer's clock; apply uses max(at_ms, state clock)
    request_id: str = ""
    idempotency_key: str | None = None
    principal: str | None = None
    index: int = 0  # Raft index, filled in by the adapter at apply time
    meta: dict[str, Any] = field(default_factory=dict)


def command_to_dict(command: Command) -> dict[str, Any]:
    out: dict[str, Any] = {"k": command.kind}
    for f in fields(command):
        value = getattr(command, f.name)
        if isinstance(command, Batch) and f.name == "operations":
            value = [command_to_dict(op) for op in value]
        out[f.name] = value
    return out


def command_from_dict(raw: dict[str, Any]) -> Command:
    raw = dict(raw)
    cls = COMMANDS.get(raw.pop("k", None))  # type: ignore[arg-type]
    if cls is None:
        raise CorruptEntry(f"unknown command kind in {raw!r}")
    if cls is Batch:
        raw["operations"] = tuple(command_from_dict(op) for op in raw.get("operations", ()))
    try:
        return cls(**raw)  # type: ignore[no-any-return]
    except TypeError as exc:
        raise CorruptEntry(f"malformed {cls.__name__} command: {exc}") from exc


def encode(entry: Entry) -> bytes:
    return orjson.dumps(
        {
            "v": FORMAT_VERSION,
            "c": command_to_dict(entry.command),
            "t": entry.at_ms,
            "r": entry.request_id,
            "i": entry.idempotency_key,
            "p": entry.principal,
            "m": entry.meta,
        }
    )


def decode(blob: bytes, index: int = 0) -> Entry:
    try:
        raw = orjson.loads(blob)
        if raw.get("v") != FORMAT_VERSION:
            raise CorruptEntry(f"unsupported entry format version {raw.get('v')!r}")
        return Entry(
            command=command_from_dict(raw["c"]),
            at_ms=int(raw["t"]),
            request_id=raw.get("r", ""),
            idempotency_key=raw.get("i"),
            principal=raw.get("p"),
            index=index,
            meta=raw.get("m") or {},
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptEntry(f"cannot decode log entry: {exc}") from exc
