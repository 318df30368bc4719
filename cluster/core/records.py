"""Immutable records held by the cluster state: objects, pending changes, tasks, machines.

A record is never mutated: a change builds a new one and replaces the old one
whole, so a reader on another thread sees either the old or the new object,
never half of an update.

Objects, their tasks and pending changes are frozen `msgspec.Struct`s: built in
C (a frozen dataclass's `__init__` is ten times slower, and a node builds one
record per transition), and untracked by the cyclic GC (`gc=False`: they hold no
cycles), so a million objects do not make every full collection walk a million
more containers. `replace()` is `dataclasses.replace` for them. `array_like`:
msgspec writes them as positional arrays in field order, the snapshot format
(cluster/core/codec.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import msgspec

replace = msgspec.structs.replace

_ISO_CACHE: dict[int, str] = {}
_ISO_CACHE_SIZE = 8192


def iso_ms(ms: int | None) -> str | None:
    """Milliseconds since the epoch as `2026-11-22T07:00:00.000Z` (None stays None)."""
    if ms is None:
        return None
    # one apply formats the same few timestamps several times (event, object, context)
    text = _ISO_CACHE.get(ms)
    if text is None:
        if len(_ISO_CACHE) >= _ISO_CACHE_SIZE:
            _ISO_CACHE.clear()
        text = _ISO_CACHE[ms] = _iso_second(ms // 1000) + _MILLIS[ms % 1000]
    return text


_MILLIS = tuple(f"{n:03d}Z" for n in range(1000))


def iso_entry_ms(ms: int) -> str:
    """`iso_ms` for an entry's own time: formatted, not cached (each entry has a new
    time, and filling and clearing the cache cost more than formatting)."""
    return _iso_second(ms // 1000) + _MILLIS[ms % 1000]


@lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    # formatting dominates the apply loop otherwise; entries cluster in few seconds
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


class PendingChange(msgspec.Struct, frozen=True, gc=False, array_like=True):
    change: str
    transition: str
    data: dict[str, Any] | None
    base_version: int
    votes: dict[str, bool]  # voter -> approve; replaced whole on every vote
    voters: tuple[str, ...] | None  # None = any voter
    required: int
    proposed_at_ms: int
    expires_at_ms: int | None

    def approvals(self) -> int:
        return sum(1 for v in self.votes.values() if v)

    def rejections(self) -> int:
        return sum(1 for v in self.votes.values() if not v)

    def to_json(self) -> dict[str, Any]:
        return {
            "change": self.change,
            "transition": self.transition,
            "data": self.data,
            "base_version": self.base_version,
            "votes": dict(self.votes),
            "voters": list(self.voters) if self.voters is not None else "any",
            "required": self.required,
            "proposed_at": iso_ms(self.proposed_at_ms),
            "expires_at": iso_ms(self.expires_at_ms),
        }


class TaskRecord(msgspec.Struct, frozen=True, gc=False, array_like=True):
    name: str
    status: str  # "pending" | "completed" | "failed"
    config: dict[str, Any]
    attempts: int = 1
    error: str | None = None
    data: dict[str, Any] | None = None
    updated_at_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "config": self.config,
            "attempts": self.attempts,
            "error": self.error,
            "data": self.data,
            "updated_at": iso_ms(self.updated_at_ms),
        }


class ObjectRecord(msgspec.Struct, frozen=True, gc=False, array_like=True):
    machine: str
    id: str
    revision: str
    state: str
    previous_state: str | None
    data: dict[str, Any]
    version: int
    generation: int
    pending: PendingChange | None
    tasks: tuple[TaskRecord, ...]
    created_at_ms: int
    updated_at_ms: int
    expires_at_ms: int | None  # when the state's timeout fires, if it has one
    index: int  # Raft index of the entry that last changed the object
    applied: tuple[str, ...]  # transitions since the last restart, for `follows`

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "id": self.id,
            "revision": self.revision,
            "state": self.state,
            "previous_state": self.previous_state,
            "data": self.data,
            "version": self.version,
            "generation": self.generation,
            "pending": self.pending.to_json() if self.pending else None,
            "tasks": [t.to_json() for t in self.tasks],
            "created_at": iso_ms(self.created_at_ms),
            "updated_at": iso_ms(self.updated_at_ms),
            "expires_at": iso_ms(self.expires_at_ms),
            "index": self.index,
        }

    def summary_json(self) -> dict[str, Any]:
        """What a write answers with under `Prefer: return=minimal`: which object, where it
        is and at which version and log index, without its data, tasks or times."""
        return {"machine": self.machine, "id": self.id, "state": self.state,
                "version": self.version, "index": self.index}


@dataclass(frozen=True, slots=True)
class MachineEntry:
    """A machine name, its current revision and every revision still in use."""

    name: str
    revision: str
    sources: dict[str, str]  # revision -> definition text
    objects_by_revision: dict[str, int]

    @property
    def object_count(self) -> int:
        return sum(self.objects_by_revision.values())

    @property
    def revisions(self) -> dict[str, str]:
        return self.sources

    def with_objects(self, revision: str, delta: int) -> MachineEntry:
        counts = dict(self.objects_by_revision)
        counts[revision] = counts.get(revision, 0) + delta
        sources = self.sources
        if counts[revision] <= 0:
            del counts[revision]
            if revision != self.revision:
                # an old revision nobody uses any more is forgotten
                sources = {r: s for r, s in sources.items() if r != revision}
        return MachineEntry(self.name, self.revision, sources, counts)


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    fingerprint: str  # hash of the command: a reused key with another request is refused
    # the original outcome (codec.outcome_to_dict) as JSON text: one string instead of a
    # tree of dicts is about half the memory per key, and is decoded only on a replay
    outcome: str
    at_ms: int
