"""Cluster state <-> bytes (snapshots), and outcomes <-> plain data (idempotency table).

The encoding is deterministic: two nodes with the same state produce the same
bytes, which is what the determinism tests compare. Records are written as
positional arrays (field order of the record) to keep snapshots small.

msgspec does the work in C: records are `array_like` structs, so it writes them
and, on decode, builds them straight from the JSON without an intermediate
list or dict per record. The cyclic GC is paused during a decode (it allocates
millions of containers, and every collection it would trigger walks the whole
growing heap: most of the minute a 1M-object decode took), not during an encode
(which makes a slice's containers at a time). Objects, histories and the other
tables are encoded in slices sized to take about `SLICE_SECONDS` each, so
another thread of the process gets the GIL between slices: one encoder call
holds it throughout. A fixed count of records was not enough: 2,000 histories
of 100 events (the default `history`) were one 132 ms call. The slices are
joined by the caller or written one by one as they come (`dump_parts`, which
a node's dump process streams to its file: the encoded state, 658 MB at a
million objects, is never all in memory); the bytes do not depend on where the
slices fall.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Any

import msgspec
from sortedcontainers import SortedDict

from .history import loaded, stored
from .members import MemberInfo
from .outcome import Outcome, Rejection
from .records import IdempotencyRecord, MachineEntry, ObjectRecord, PendingChange, TaskRecord
from .state import ClusterState

STATE_FORMAT = 1
SLICE_SECONDS = 0.002  # what one encoder call should take (it holds the GIL throughout)
FIRST_SLICE = 64  # items in the first call; later ones are sized by how long the last took
MAX_SLICE = 20_000

OBJECT_FIELDS: tuple[str, ...] = ObjectRecord.__struct_fields__
TASK_FIELDS: tuple[str, ...] = TaskRecord.__struct_fields__
PENDING_FIELDS: tuple[str, ...] = PendingChange.__struct_fields__


class CorruptState(Exception):
    """Snapshot bytes that do not decode into a cluster state."""


class _StateDoc(msgspec.Struct):
    """The snapshot document (format 1), as msgspec decodes it."""

    format: int
    clock_ms: int
    last_index: int
    idempotency_window_ms: int
    idempotency_max_keys: int
    machines: list[tuple[str, str, dict[str, str], dict[str, int]]]
    objects: list[ObjectRecord]
    histories: list[tuple[str, str, msgspec.Raw]]  # decoded on first touch (history.py)
    idempotency: list[tuple[str, str, Any, int]]  # the outcome: JSON text (a dict before)
    deadlines: list[tuple[int, str, str, str, Any]]
    # absent from snapshots written before tombstones / members existed
    tombstones: list[tuple[str, str, int]] = []
    version_floors: dict[str, int] = {}
    members: list[tuple[str, str, str]] = []


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_StateDoc)


_pause_lock = threading.RLock()  # RLock: a finalizer run by a collection may encode
_pauses = [0, False]  # threads inside gc_paused(); whether the GC was enabled when the first came


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic GC off until the last thread inside leaves (two decodes may overlap). Collect through `collect_unless_paused`, never `gc.collect()`
    directly: that ignores `gc.disable()` and would walk the half-built state."""
    with _pause_lock:
        if _pauses[0] == 0:
            _pauses[1] = gc.isenabled()
            gc.disable()
        _pauses[0] += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses[0] -= 1
            if _pauses[0] == 0 and _pauses[1]:
                gc.enable()


def collect_unless_paused() -> bool:
    """Collect every unfrozen object, then `gc.freeze()`, unless a decode has the GC paused.

    Under the pause lock, so a pause cannot begin while the collection runs (a
    plain `isenabled()` check raced with the Raft thread starting a decode: the
    collection then walked the half-decoded 1M-object state, ~13 s with the GIL held).

    The oldest generation is collected only when it holds unfrozen objects (automatic
    collections moved them there since the last freeze): otherwise every unfrozen object is
    in the two young ones, and collecting those finds the same garbage. A full collection
    also empties CPython's free lists (tuples, lists, dicts, floats), which the next tenth
    of a second then allocates afresh: 0.4 ms against 0.9-1.4 ms a collection, measured."""
    with _pause_lock:
        if _pauses[0]:
            return False
        gc.collect(2 if gc.get_objects(generation=2) else 1)
        gc.freeze()
        return True


def _array(items: Iterable[Any]) -> Iterator[bytes]:
    """`items` as one JSON array in parts, each an encoder call of about `SLICE_SECONDS`.

    Items are taken from the iterable slice by slice, so the only containers a dump
    makes are a slice's (a million history tuples made up front were what a
    collection would walk, and what the GC used to be paused for)."""
    yield b"["
    items = iter(items)
    size = FIRST_SLICE
    first = True
    while chunk := list(islice(items, size)):
        began = time.perf_counter()
        part = _encoder.encode(chunk)[1:-1]
        took = time.perf_counter() - began
        yield part if first else b"," + part
        first = False
        # at most double, so one slice of small items cannot make the next one huge
        size = max(1, min(MAX_SLICE, 2 * size, int(size * SLICE_SECONDS / max(took, 1e-7))))
    yield b"]"


def dumps(state: ClusterState) -> bytes:
    return b"".join(dump_parts(state))


def dump_parts(state: ClusterState) -> Iterator[bytes]:
    """The bytes of `dumps` in parts, made as they are asked for, to write one by one:
    joining a large state's parts would hold the GIL for one more copy of it, and
    keeping them would hold the encoded state in memory beside the state.

    The GC is not paused: a dump allocates a slice's containers at a time, and the
    node's periodic collection must go on while it runs (a long dump with the GC
    paused left seconds of the node's allocations to one long collection after it)."""
    head = _encoder.encode({
        "format": STATE_FORMAT,
        "clock_ms": state.clock_ms,
        "last_index": state.last_index,
        "idempotency_window_ms": state.idempotency_window_ms,
        "idempotency_max_keys": state.idempotency_max_keys,
        "machines": [
            [m.name, m.revision, m.sources, m.objects_by_revision]
            for m in state.machines_by_name.values()
        ],
    })
    # the document's fields in order; a staged history (history.py) is written as its plain
    # events, a loaded one as it was read
    tables = (
        ("objects", (r for table in state.objects.values() for r in table.values())),
        ("histories", ((m, i, stored(h)) for (m, i), h in state.histories.items())),
        ("idempotency", ((k, r.fingerprint, r.outcome, r.at_ms)
                         for k, r in state.idempotency.items())),
        ("deadlines", state.deadlines),
        ("tombstones", ((m, i, v) for (m, i), v in state.tombstones.items())),
    )
    yield head[:-1]
    for name, items in tables:
        yield b',"%s":' % name.encode()
        yield from _array(items)
    tail = _encoder.encode({
        "version_floors": state.version_floors,
        "members": [[raft, m.http, m.name] for raft, m in state.members.items()],
    })
    yield b"," + tail[1:]


def loads(blob: bytes) -> ClusterState:
    """The state in `blob`, frozen out of the cyclic GC's reach (module docstring)."""
    try:
        with gc_paused():
            raw = _decoder.decode(blob)
            if raw.format != STATE_FORMAT:
                raise CorruptState(f"unsupported state format {raw.format!r}")
            state = _state(raw)
            del raw
            gc.freeze()
            return state
    except CorruptState:
        raise
    except (msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
        raise CorruptState(f"cannot decode cluster state: {exc}") from exc


def _state(raw: _StateDoc) -> ClusterState:
    state = ClusterState(
        idempotency_window_ms=raw.idempotency_window_ms,
        idempotency_max_keys=raw.idempotency_max_keys,
    )
    state.clock_ms = raw.clock_ms
    state.last_index = raw.last_index
    for name, revision, sources, counts in raw.machines:
        state.machines_by_name[name] = MachineEntry(name, revision, sources, counts)
    by_machine: dict[str, list[ObjectRecord]] = {}
    for record in raw.objects:
        by_machine.setdefault(record.machine, []).append(record)
    for machine, records in by_machine.items():
        state.objects[machine] = SortedDict(zip([r.id for r in records], records, strict=True))
    state.histories = {(machine, oid): loaded(events) for machine, oid, events in raw.histories}
    for key, fingerprint, outcome, at_ms in raw.idempotency:
        if not isinstance(outcome, str):  # snapshots before records were compacted
            outcome = _encoder.encode(outcome).decode()
        state.idempotency[key] = IdempotencyRecord(fingerprint, outcome, at_ms)
    state.deadlines = list(raw.deadlines)  # already a heap
    state.tombstones = {(m, i): v for m, i, v in raw.tombstones}
    state.version_floors = dict(raw.version_floors)
    for raft, http, name in raw.members:
        state.members[raft] = MemberInfo(http, name)
    return state


def outcome_to_dict(outcome: Outcome) -> dict[str, Any]:
    return {
        "status": outcome.status,
        "body": outcome.body,
        "error": dataclasses.asdict(outcome.error) if outcome.error else None,
        "results": [outcome_to_dict(r) for r in outcome.results],
    }


def outcome_from_dict(raw: dict[str, Any]) -> Outcome:
    error = raw.get("error")
    return Outcome(
        status=raw["status"],
        raw_body=raw.get("body") or {},
        error=Rejection(error["code"], error["message"], tuple(error["details"]))
        if error
        else None,
        results=tuple(outcome_from_dict(r) for r in raw.get("results", ())),
    )
