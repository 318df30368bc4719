"""Raft log entries: the commands the engine applies, and their wire encoding.

An entry is stamped by the node that proposes it (time in ms since the epoch,
request id, optional idempotency key and principal); the Raft index is added by
the adapter when the entry is applied. Encoding is versioned JSON (orjson) so a
log written by one version is readable by the next; an entry that cannot be
decoded raises `CorruptEntry`, which halts the node rather than diverging.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, cast

import msgspec
import orjson

FORMAT_VERSION = 1


class CorruptEntry(Exception):
    """A log entry that no version of the code can decode: the node must stop."""


# The values `decode`'s typed path takes as orjson reads them. orjson reads an integer
# literal past 64 bits as a float and msgspec as an int: past int64 the typed path refuses
# it (msgspec bounds stop at int64). msgspec has no recursive alias before Python 3.12, so
# values are typed to a fixed depth: deeper ones take the general path. Each level doubles
# the type's tree (6 levels: ~2 ms to build at import; 10: ~50 ms).
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
TYPED_DEPTH = 6


def _json_value(depth: int) -> Any:
    value: Any = None | bool | Int64 | float | str
    for _ in range(depth):
        value = None | bool | Int64 | float | str | list[value] | dict[str, value]  # type: ignore[valid-type]
    return value


if TYPE_CHECKING:
    JsonValue = Any
else:
    JsonValue = _json_value(TYPED_DEPTH)


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


class Transition(_Command, frozen=True, gc=False, tag_field="k", tag="transition",
                 forbid_unknown_fields=True):
    """Tagged as on the wire ("k"), with no other keys, for `decode`'s typed path;
    the tag changes nothing else (commands are written by `command_to_dict`)."""

    kind: ClassVar[str] = "transition"
    machine: str
    id: str
    transition: str
    data: dict[str, JsonValue] | None = None
    expected_version: Int64 | None = None


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


def decode_general(blob: bytes, index: int = 0) -> Entry:
    """Any entry of any command kind, checked only for what `Entry` needs (the fields of a
    command are not type-checked): the path every entry took before `decode`'s typed one,
    and still the one that decides every entry that path refuses."""
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


class _NoCommand(msgspec.Struct, frozen=True, gc=False, tag_field="k", tag=""):
    """Never decodes (no string matches its field's pattern). In a union with `Transition`
    it makes the tag required: an operation without "k" is refused, as `command_from_dict`
    refuses it (a lone tagged struct takes a missing tag)."""

    never: Annotated[str, msgspec.Meta(pattern="(?!)")]


class _TransitionBatch(msgspec.Struct, frozen=True, gc=False, tag_field="k", tag="batch",
                       forbid_unknown_fields=True):
    operations: tuple[Transition | _NoCommand, ...]
    atomic: bool = False


class _Envelope(msgspec.Struct, frozen=True, gc=False):
    """An entry of a transition or a batch of them, every value of the type `encode`
    writes; unknown keys are ignored, as `decode_general` ignores them."""

    v: int
    c: Transition | _TransitionBatch
    t: Int64
    r: str = ""
    i: str | None = None
    p: str | None = None
    m: dict[str, JsonValue] | None = None


_decode_envelope = msgspec.json.Decoder(_Envelope).decode


def decode(blob: bytes, index: int = 0) -> Entry:
    """`decode_general`'s entry, built in C for a transition or a batch of them.

    Every node decodes every entry; a batch of 100 operations in Python was ~6 % of a
    node's CPU (dicts from orjson, then a struct built from each). The typed decoder takes
    only what `decode_general` would read the same (JSON types as `encode` writes them,
    no unknown keys in a command, format version 1); anything else, malformed or not, is
    left to `decode_general`, so both paths give equal entries and the same `CorruptEntry`.
    """
    try:
        envelope = _decode_envelope(blob)
    except (msgspec.DecodeError, RecursionError):  # RecursionError: nested past msgspec's limit
        return decode_general(blob, index)
    if envelope.v != FORMAT_VERSION:
        return decode_general(blob, index)
    c = envelope.c
    command: Command = c if c.__class__ is Transition else Batch(
        cast(tuple[Transition, ...], c.operations), c.atomic)  # type: ignore[union-attr]
    return Entry(command, envelope.t, envelope.r, envelope.i, envelope.p, index, envelope.m or {})
