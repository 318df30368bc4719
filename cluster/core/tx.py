"""A write overlay over the cluster state, committed only when an entry succeeds.

The engine never writes to `ClusterState` directly: it reads through a `Tx`,
stages new records in it, and commits at the end. A rejected entry simply drops
its `Tx`, which is how "a failed entry changes nothing" holds without copying the
state. All-or-nothing parts inside one entry: steps (`begin_step`/`drop_step`,
an undo log of the overlay writes) for the operations of a non-atomic batch, and
children (`Tx.child()`) for the fired deadlines of a tick. The `Tx` also counts
the entry's steps against its budget (limits.py).
"""

from __future__ import annotations

from heapq import heappush
from typing import Any

import msgspec

from .event import AnyEvent
from .history import History, appended
from .limits import Budget
from .records import MachineEntry, ObjectRecord, iso_entry_ms
from .state import ClusterState, Deadline, ObjectKey

_MISSING = object()
_dict_set = dict.__setitem__


def begin_tx(state: ClusterState, now_ms: int, index: int) -> Tx:
    """The `Tx` of an entry applied at `now_ms` (its time as text, a fresh step budget)."""
    return Tx(state, now_ms, index, iso_entry_ms(now_ms), Budget())


class Tx(msgspec.Struct, gc=False):
    """A (mutable) msgspec struct: one is built for every entry, in C, its overlays by
    their default factories (a class with `__slots__` and an `__init__` took twice as
    long). Untracked by the cyclic GC: it refers to no `Tx` but its parent, and nothing
    it holds refers back to it. Make one with `begin_tx`, a child with `child()`."""

    state: ClusterState
    now_ms: int
    index: int
    now_iso: str
    budget: Budget  # the entry's step budget, shared with every child (limits.py)
    parent: Tx | None = None
    _objects: dict[ObjectKey, ObjectRecord | None] = msgspec.field(default_factory=dict)
    _histories: dict[ObjectKey, History] = msgspec.field(default_factory=dict)
    # made on the first write (most entries stage no machine and no tombstone)
    _machines: dict[str, MachineEntry | None] | None = None
    _tombstones: dict[ObjectKey, int | None] | None = None
    deadlines: list[Deadline] = msgspec.field(default_factory=list)
    events: list[AnyEvent] = msgspec.field(default_factory=list)
    # a step's writes: (overlay, key, value before or _MISSING); None outside a step
    _undo: list[tuple[dict[Any, Any], Any, Any]] | None = None
    # len(events), len(deadlines), len(_objects), len(_histories) when the step began
    _step_marks: tuple[int, int, int, int] = (0, 0, 0, 0)

    def child(self) -> Tx:
        return Tx(self.state, self.now_ms, self.index, self.now_iso, self.budget, self)

    def charge(self, steps: int) -> None:
        """Counts deterministic work; past the entry's budget raises `BudgetExceeded`."""
        budget = self.budget
        budget.priced += steps
        budget.used += steps
        if budget.used > budget.limit:
            budget.meter(0)  # raises BudgetExceeded

    # -- reads through the overlay ----------------------------------------

    def get_object(self, key: ObjectKey) -> ObjectRecord | None:
        found = self._objects.get(key, _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        if self.parent is not None:
            return self.parent.get_object(key)
        table = self.state.objects.get(key[0])  # state.get_object, inline
        return table.get(key[1]) if table is not None else None

    def machine_and_object(self, name: str, oid: str) -> tuple[MachineEntry | None,
                                                                ObjectRecord | None]:
        """`machine(name)` and `get_object((name, oid))` in one call (a transition's
        first reads), from the overlay and the state itself while no machine is staged
        (a batch's operations after the first find their objects staged or not)."""
        if self.parent is None and not self._machines:
            state = self.state
            record = self._objects.get((name, oid), _MISSING) if self._objects else _MISSING
            if record is _MISSING:
                table = state.objects.get(name)
                record = table.get(oid) if table is not None else None
            return state.machines_by_name.get(name), record  # type: ignore[return-value]
        return self.machine(name), self.get_object((name, oid))

    def get_history(self, key: ObjectKey) -> History:
        """The object's history as stored (history.py: read its events with `events`)."""
        found = self._histories.get(key)
        if found is not None:
            return found
        if self.parent is not None:
            return self.parent.get_history(key)
        return self.state.histories.get(key, ())

    def version_before(self, key: ObjectKey) -> int:
        """The version a new object of this id continues from (see ClusterState)."""
        if self._tombstones is not None:
            found = self._tombstones.get(key, _MISSING)
            if found is not _MISSING:
                return found or 0  # type: ignore[return-value]
        if self.parent is not None:
            return self.parent.version_before(key)
        return self.state.version_before(key)

    def machine(self, name: str) -> MachineEntry | None:
        if self._machines is not None:
            found = self._machines.get(name, _MISSING)
            if found is not _MISSING:
                return found  # type: ignore[return-value]
        if self.parent is not None:
            return self.parent.machine(name)
        return self.state.machines_by_name.get(name)

    # -- staged writes ----------------------------------------------------

    def put_object(
        self,
        key: ObjectKey,
        record: ObjectRecord | None,
        event: AnyEvent | None = None,
        keep: int = 0,
    ) -> None:
        """Stages the object's new record (None: removed), and `record_event(key, event,
        keep)` when an event is given (one call for what a transition does)."""
        if self._undo is not None:  # (a key the step adds is not logged: see begin_step)
            if key in self._objects:
                self._log(self._objects, key)
            if key in self._histories:
                self._log(self._histories, key)
        self._objects[key] = record
        if record is None:
            self._histories[key] = ()
        elif event is not None:  # record_event, inline
            self.events.append(event)
            if keep > 0:
                history = self._histories.get(key)
                if history is None:
                    history = (self.parent.get_history(key) if self.parent is not None
                               else self.state.histories.get(key, ()))
                self._histories[key] = appended(history, event, keep)

    def put_tombstone(self, key: ObjectKey, version: int | None) -> None:
        """A removed id keeps its last version for a later creation (None: forget it)."""
        tombstones = self._tombstones
        if tombstones is None:
            tombstones = self._tombstones = {}
        if self._undo is not None:
            self._log(tombstones, key)
        tombstones[key] = version

    def record_event(self, key: ObjectKey, event: AnyEvent, keep: int) -> None:
        """Adds an event to the entry's output and to the object's bounded history."""
        self.events.append(event)
        if keep > 0:
            if self._undo is not None and key in self._histories:
                self._log(self._histories, key)
            self._histories[key] = appended(self.get_history(key), event, keep)

    def publish(self, event: dict[str, Any]) -> None:
        """An event for the feed only (e.g. `emitted`), not kept in the object's history."""
        self.events.append(event)

    def put_machine(self, name: str, entry: MachineEntry | None) -> None:
        machines = self._machines
        if machines is None:
            machines = self._machines = {}
        if self._undo is not None:
            self._log(machines, name)
        machines[name] = entry

    def schedule(self, deadline: Deadline) -> None:
        self.deadlines.append(deadline)

    # -- steps: all-or-nothing parts of an entry without a child Tx ---------

    def begin_step(self) -> None:
        """A step (one operation of a non-atomic batch) begins: until the next step or
        `end_step`, writes are logged so that `drop_step` can take them back. Cheaper
        than a child `Tx` per operation (its overlay, the reads through two levels and
        the merge cost ~1 us an operation); no child may be made during a step.

        An object or history the step adds to the overlay is not logged (most writes of a
        batch: each operation its own object): a dict keeps its keys in insertion order
        and overlay keys are never deleted, so the keys added since the step began are
        the last ones, and `drop_step` pops them (newest first). Only what the step
        overwrites in those two, and every machine or tombstone it writes, is logged."""
        self._undo = []
        self._step_marks = (len(self.events), len(self.deadlines), len(self._objects),
                            len(self._histories))

    def drop_step(self) -> None:
        """Takes back what the current step wrote, newest first; the step ends."""
        undo = self._undo
        assert undo is not None
        for table, key, old in reversed(undo):
            if old is _MISSING:
                del table[key]
            else:
                table[key] = old
        events, deadlines, objects, histories = self._step_marks
        for table, size in ((self._objects, objects), (self._histories, histories)):
            while len(table) > size:
                table.popitem()  # the keys the step added, newest first (LIFO)
        del self.events[events:]
        del self.deadlines[deadlines:]
        self._undo = None

    def end_step(self) -> None:
        self._undo = None

    def _log(self, table: dict[Any, Any], key: Any) -> None:
        assert self._undo is not None
        self._undo.append((table, key, table.get(key, _MISSING)))

    # -- commit -----------------------------------------------------------

    def merge_into_parent(self) -> None:
        parent = self.parent
        assert parent is not None and parent._undo is None  # no children inside a step
        parent._objects.update(self._objects)
        if self._histories:  # a batch merges one child per operation: no empty updates
            parent._histories.update(self._histories)
        if self._machines:
            for name, entry in self._machines.items():
                parent.put_machine(name, entry)
        if self._tombstones:
            for key, version in self._tombstones.items():
                parent.put_tombstone(key, version)
        if self.deadlines:
            parent.deadlines.extend(self.deadlines)
        parent.events.extend(self.events)

    def commit(self) -> None:
        state = self.state
        if self._machines:  # most entries touch no machine, tombstone or deadline:
            for name, entry in self._machines.items():  # no loop is set up for them
                if entry is None:
                    state.machines_by_name.pop(name, None)
                else:
                    state.machines_by_name[name] = entry
        objects = state.objects
        for key, record in self._objects.items():
            table = objects.get(key[0]) if record is not None else None
            if table is not None and key[1] in table:
                # an existing id gets its new record: state.put_object's common case, inline
                # (the SortedDict's sorted keys do not change)
                _dict_set(table, key[1], record)
            else:
                state.put_object(key, record)
        if self._histories:
            histories = state.histories
            for key, history in self._histories.items():
                if history:
                    histories[key] = history
                else:
                    histories.pop(key, None)
        if self._tombstones:
            for key, version in self._tombstones.items():
                state.put_tombstone(key, version)
        if self.deadlines:
            for deadline in self.deadlines:
                heappush(state.deadlines, deadline)  # state.push_deadline, inline
        state.clock_ms = self.now_ms
        if self.index > state.last_index:
            state.last_index = self.index
