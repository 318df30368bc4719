"""The replicated cluster state and its read API.

The engine changes a state only by committing a `Tx` (see tx.py), after an entry
has fully succeeded. Readers on other threads see whole records: every value put
into these dicts is an immutable record, and a dict assignment is atomic in
CPython.
"""

from __future__ import annotations

import heapq
from typing import Any

from sortedcontainers import SortedDict

from .event import plain
from .history import History
from .history import events as history_events
from .members import MemberInfo
from .records import IdempotencyRecord, MachineEntry, ObjectRecord

ObjectKey = tuple[str, str]  # (machine, id)
# (due ms, machine, id, kind, reference): kind "timeout" (reference: object version)
# or "vote" (reference: change id). Stale ones are skipped when they come due.
Deadline = tuple[int, str, str, str, Any]

DEFAULT_IDEMPOTENCY_WINDOW_MS = 10 * 60 * 1000
# ~1 KB per key (the original answer is kept as JSON text): 200,000 keys hold ~333 keyed
# writes/s for the default 10-minute window; beyond that keyed writes are refused (429).
DEFAULT_IDEMPOTENCY_MAX_KEYS = 200_000
# Removed objects whose id was not created again remember their last version, so a new
# object of that id continues above it (the version is a fencing token: it never goes
# backwards for an id). Past this many, the oldest is folded into its machine's floor.
MAX_TOMBSTONES = 100_000


class ClusterState:
    def __init__(
        self,
        *,
        idempotency_window_ms: int = DEFAULT_IDEMPOTENCY_WINDOW_MS,
        idempotency_max_keys: int = DEFAULT_IDEMPOTENCY_MAX_KEYS,
    ) -> None:
        self.clock_ms = 0
        self.last_index = 0
        self.machines_by_name: dict[str, MachineEntry] = {}
        self.objects: dict[str, SortedDict] = {}  # machine -> SortedDict[id, ObjectRecord]
        # (machine, id) -> the object's history (history.py: read it with `events`)
        self.histories: dict[ObjectKey, History] = {}
        self.idempotency: dict[str, IdempotencyRecord] = {}
        self.deadlines: list[Deadline] = []
        self.tombstones: dict[ObjectKey, int] = {}  # removed id -> its last version
        self.version_floors: dict[str, int] = {}  # machine -> largest forgotten tombstone
        self.max_tombstones = MAX_TOMBSTONES
        # raft address -> HTTP address and name (members.py; written by `Member` entries)
        self.members: dict[str, MemberInfo] = {}
        self.idempotency_window_ms = idempotency_window_ms
        self.idempotency_max_keys = idempotency_max_keys

    # -- reads -------------------------------------------------------------

    def get_object(self, machine: str, id: str) -> ObjectRecord | None:
        table = self.objects.get(machine)
        return table.get(id) if table is not None else None

    def list_objects(
        self,
        machine: str,
        *,
        state: str | None = None,
        after: str | None = None,
        limit: int = 100,
        prefix: str | None = None,
    ) -> tuple[list[ObjectRecord], str | None]:
        """Objects ordered by id, starting after `after`; `next` is the id to resume from.

        With `prefix` only ids that start with it: the scan starts at the prefix and
        stops at the first id past it (ids are sorted), so it never walks the table."""
        table = self.objects.get(machine)
        if not table:
            return [], None
        out: list[ObjectRecord] = []
        start, exclusive = after, True
        if prefix and (after is None or after < prefix):
            start, exclusive = prefix, False
        ids = table.irange(minimum=start, inclusive=(not exclusive, False)) if start else iter(table)
        for oid in ids:
            if prefix and not oid.startswith(prefix):
                break
            record = table[oid]
            if state is not None and record.state != state:
                continue
            if len(out) == limit:
                return out, out[-1].id
            out.append(record)
        return out, None

    def state_counts(self, machine: str) -> dict[str, int]:
        """How many objects of `machine` are in each state (one pass over its objects)."""
        counts: dict[str, int] = {}
        for record in self.objects.get(machine, {}).values():
            counts[record.state] = counts.get(record.state, 0) + 1
        return counts

    def history(self, machine: str, id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The newest `limit` events, newest first, as plain dicts (event.py)."""
        events = history_events(self.histories.get((machine, id), ()))
        return [plain(e) for e in reversed(events[-limit:])] if limit > 0 else []

    def machine(self, name: str) -> MachineEntry | None:
        return self.machines_by_name.get(name)

    def machines(self) -> list[MachineEntry]:
        return [self.machines_by_name[n] for n in sorted(self.machines_by_name)]

    def tasks(
        self, status: str | None = None, machine: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Issued tasks across objects (for workers), ordered by machine then object id."""
        out: list[dict[str, Any]] = []
        names = [machine] if machine is not None else sorted(self.objects)
        for name in names:
            for record in self.objects.get(name, {}).values():
                for task in record.tasks:
                    if status is not None and task.status != status:
                        continue
                    out.append(
                        {
                            "machine": name,
                            "object": record.id,
                            "state": record.state,
                            "version": record.version,
                            **task.to_json(),
                        }
                    )
                    if len(out) >= limit:
                        return out
        return out

    def version_before(self, key: ObjectKey) -> int:
        """The version a new object of this id continues from: 0 unless the id was used."""
        found = self.tombstones.get(key)
        return found if found is not None else self.version_floors.get(key[0], 0)

    def next_deadline_ms(self) -> int | None:
        return self.deadlines[0][0] if self.deadlines else None

    def object_count(self) -> int:
        return sum(len(t) for t in self.objects.values())

    # -- writes (used by Tx.commit only) ----------------------------------

    def put_object(self, key: ObjectKey, record: ObjectRecord | None) -> None:
        machine, oid = key
        if record is None:
            table = self.objects.get(machine)
            if table is not None:
                table.pop(oid, None)
                if not table:
                    del self.objects[machine]
            self.histories.pop(key, None)
            return
        table = self.objects.get(machine)
        if table is None:
            table = self.objects[machine] = SortedDict()
        if oid in table:  # the sorted keys stay as they are: skip SortedDict's bookkeeping
            dict.__setitem__(table, oid, record)
        else:
            table[oid] = record

    def put_tombstone(self, key: ObjectKey, version: int | None) -> None:
        """Remember (or, None: forget) a removed object's last version, bounded."""
        self.tombstones.pop(key, None)
        if version is None:
            return
        self.tombstones[key] = version
        while len(self.tombstones) > self.max_tombstones:
            (machine, oid) = next(iter(self.tombstones))
            oldest = self.tombstones.pop((machine, oid))
            self.version_floors[machine] = max(self.version_floors.get(machine, 0), oldest)

    def push_deadline(self, deadline: Deadline) -> None:
        heapq.heappush(self.deadlines, deadline)

    def pop_due_deadlines(self, now_ms: int) -> list[Deadline]:
        due: list[Deadline] = []
        while self.deadlines and self.deadlines[0][0] <= now_ms:
            due.append(heapq.heappop(self.deadlines))
        return due

    def idempotency_full(self, key: str, now_ms: int) -> bool:
        """True when remembering a new key would forget one younger than the window."""
        if key in self.idempotency or len(self.idempotency) < self.idempotency_max_keys:
            return False
        oldest = next(iter(self.idempotency.values()))
        return oldest.at_ms >= now_ms - self.idempotency_window_ms

    def idempotency_oldest_ms(self) -> int | None:
        """When the oldest remembered key was used (insertion order is time order)."""
        return next(iter(self.idempotency.values())).at_ms if self.idempotency else None

    def remember_idempotency(self, key: str, record: IdempotencyRecord) -> None:
        self.idempotency.pop(key, None)
        self.idempotency[key] = record
        horizon = record.at_ms - self.idempotency_window_ms
        # insertion order is time order (the state clock never goes backwards)
        while self.idempotency:
            oldest_key = next(iter(self.idempotency))
            oldest = self.idempotency[oldest_key]
            if oldest.at_ms >= horizon and len(self.idempotency) <= self.idempotency_max_keys:
                break
            del self.idempotency[oldest_key]
