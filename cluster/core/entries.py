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

import msgspec
import orjson

FORMAT_VERSION = 1


class CorruptEntry(Exception):
    """A log entry that no version of the code can decode: the node must stop."""


class _Command(msgspec.Struct, frozen=True, gc=False):
    """Commands are msgspec structs: a batch decodes a hundred of them per entry on
    every node, and a struct is built in C (a frozen dataclass's `__init__` took ~1.5 µs).
    They hold plain JSON values and no cycles (`gc=False`). The wire format is
    `command_to_dict`'s, unchanged."""


class PutMachine(_Command, frozen=True, gc=False):
    kind: ClassVar[str] = "put_machine"
    name: str
    source: str  # the definition text (YAML or JSON) as the user sent it


class DeleteMachine(_Command, frozen=True, gc=False):
    kind: ClassVar[str] = "delete_machine"
    name: str


class Transition(_Command, frozen=True, gc=False):
    kind: ClassVar[str] = "transition"
    machine: str
    id: str
    transition: str
    data: dict[str, Any] | None = None
    expected_version: int | None = None


class DeleteObject(_Command, frozen=True, gc=False):
    kind: ClassVar[str] = "delete_object"
    machine: str
    id: str


class Vote(_Command, frozen=True, gc=False):
    kind: ClassVar[str] = "vote"
    machine: str
    id: str
    voter: str
    approve: bool
    change: str


class Withdraw(_Command, frozen=True, gc=False):
    kind: ClassVar[str] = "withdraw"
    machine: str
    id: str


class TaskReport(_Command, frozen=True, gc=False):
    kind: ClassVar[str] = "task_report"
    machine: str
    id: str
    task: str
    status: str  # "completed" | "failed"
    error: str | None = None
    data: dict[str, Any] | None = None


class RetryTasks(_Command, frozen=True, gc=False):
    kind: ClassVar[str] = "retry_tasks"
    machine: str
    id: str
    status: str  # "failed" | "pending"


class Batch(_Command, frozen=True, gc=False):
    kind: ClassVar[str] = "batch"
    operations: tuple[Transition, ...]
    atomic: bool = False


class Tick(_Command, frozen=True, gc=False):
    """Fires every deadline (state timeout, vote expiry) due at the entry's time."""

    kind: ClassVar[str] = "tick"


class Barrier(_Command, frozen=True, gc=False):
    """A no-op whose application proves a node has applied everything before it."""

    kind: ClassVar[str] = "barrier"


class Member(_Command, frozen=True, gc=False):
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


def _field_names(cls: type) -> tuple[str, ...]:
    names = getattr(cls, "__struct_fields__", None)
    return names if names is not None else tuple(f.name for f in fields(cls))


def command_to_dict(command: Command) -> dict[str, Any]:
    if command.__class__ is Transition:  # the same keys in the same order, without the loop
        return {"k": "transition", "machine": command.machine, "id": command.id,
                "transition": command.transition, "data": command.data,
                "expected_version": command.expected_version}
    out: dict[str, Any] = {"k": command.kind}
    for name in _field_names(type(command)):
        value = getattr(command, name)
        if isinstance(command, Batch) and name == "operations":
            value = [command_to_dict(op) for op in value]
        out[name] = value
    return out


def command_from_dict(raw: dict[str, Any]) -> Command:
    if len(raw) == 6 and raw.get("k") == "transition":  # a batch holds hundreds of these
        try:  # all five fields and "k": exactly what Transition(**fields) would take
            return Transition(raw["machine"], raw["id"], raw["transition"], raw["data"],
                              raw["expected_version"])
        except KeyError:
            pass  # another sixth key: the general path names the problem
    raw = dict(raw)
    cls = COMMANDS.get(raw.pop("k", None))  # type: ignore[arg-type]
    if cls is None:
        raise CorruptEntry(f"unknown command kind in {raw!r}")
    if cls is Batch:
        # a list, then a tuple: a generator resumed per operation cost ~30 ns more each
        raw["operations"] = tuple([command_from_dict(op) for op in raw.get("operations", ())])
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
