"""Cluster state <-> bytes (snapshots), and outcomes <-> plain data (idempotency table).

The encoding is deterministic: two nodes with the same state produce the same
bytes, which is what the determinism tests compare. Records are written as
positional lists (field order of the dataclass) to keep snapshots small.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from sortedcontainers import SortedDict

from .members import MemberInfo
from .outcome import Outcome, Rejection
from .records import IdempotencyRecord, MachineEntry, ObjectRecord, PendingChange, TaskRecord
from .state import ClusterState

STATE_FORMAT = 1


class CorruptState(Exception):
    """Snapshot bytes that do not decode into a cluster state."""


def _fields(cls: Any) -> tuple[str, ...]:
    names: tuple[str, ...] = cls.__struct_fields__
    return names


OBJECT_FIELDS = _fields(ObjectRecord)
TASK_FIELDS = _fields(TaskRecord)
PENDING_FIELDS = _fields(PendingChange)


def _object_row(r: ObjectRecord) -> list[Any]:
    row = [getattr(r, f) for f in OBJECT_FIELDS]
    row[OBJECT_FIELDS.index("pending")] = (
        [getattr(r.pending, f) for f in PENDING_FIELDS] if r.pending else None
    )
    row[OBJECT_FIELDS.index("tasks")] = [[getattr(t, f) for f in TASK_FIELDS] for t in r.tasks]
    return row


def _object_from_row(row: list[Any]) -> ObjectRecord:
    values = dict(zip(OBJECT_FIELDS, row, strict=True))
    pending = values["pending"]
    if pending is not None:
        p = dict(zip(PENDING_FIELDS, pending, strict=True))
        p["voters"] = tuple(p["voters"]) if p["voters"] is not None else None
        values["pending"] = PendingChange(**p)
    values["tasks"] = tuple(TaskRecord(*t) for t in values["tasks"])
    values["applied"] = tuple(values["applied"])
    return ObjectRecord(**values)


def dumps(state: ClusterState) -> bytes:
    return orjson.dumps(
        {
            "format": STATE_FORMAT,
            "clock_ms": state.clock_ms,
            "last_index": state.last_index,
            "idempotency_window_ms": state.idempotency_window_ms,
            "idempotency_max_keys": state.idempotency_max_keys,
            "machines": [
                [m.name, m.revision, m.sources, m.objects_by_revision]
                for m in state.machines_by_name.values()
            ],
            "objects": [_object_row(r) for table in state.objects.values() for r in table.values()],
            "histories": [[m, i, list(h)] for (m, i), h in state.histories.items()],
            "idempotency": [
                [k, r.fingerprint, r.outcome, r.at_ms] for k, r in state.idempotency.items()
            ],
            "deadlines": [list(d) for d in state.deadlines],
            "tombstones": [[m, i, v] for (m, i), v in state.tombstones.items()],
            "version_floors": state.version_floors,
            "members": [[raft, m.http, m.name] for raft, m in state.members.items()],
        }
    )


def loads(blob: bytes) -> ClusterState:
    try:
        raw = orjson.loads(blob)
        if raw.get("format") != STATE_FORMAT:
            raise CorruptState(f"unsupported state format {raw.get('format')!r}")
        state = ClusterState(
            idempotency_window_ms=raw["idempotency_window_ms"],
            idempotency_max_keys=raw["idempotency_max_keys"],
        )
        state.clock_ms = raw["clock_ms"]
        state.last_index = raw["last_index"]
        for name, revision, sources, counts in raw["machines"]:
            state.machines_by_name[name] = MachineEntry(name, revision, sources, counts)
        for row in raw["objects"]:
            record = _object_from_row(row)
            state.objects.setdefault(record.machine, SortedDict())[record.id] = record
        for machine, oid, events in raw["histories"]:
            state.histories[(machine, oid)] = tuple(events)
        for key, fingerprint, outcome, at_ms in raw["idempotency"]:
            if not isinstance(outcome, str):  # snapshots before records were compacted
                outcome = orjson.dumps(outcome).decode()
            state.idempotency[key] = IdempotencyRecord(fingerprint, outcome, at_ms)
        state.deadlines = [tuple(d) for d in raw["deadlines"]]  # already a heap
        # absent from snapshots written before tombstones existed
        state.tombstones = {(m, i): v for m, i, v in raw.get("tombstones", ())}
        state.version_floors = dict(raw.get("version_floors", {}))
        for raft, http, name in raw.get("members", ()):  # absent in snapshots before members
            state.members[raft] = MemberInfo(http, name)
        return state
    except CorruptState:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CorruptState(f"cannot decode cluster state: {exc}") from exc


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
