"""The events a transition records, and removing an object (its last event).

Shared by transitions, staged voted changes (staging.py), votes, tasks and timers.
"""

from __future__ import annotations

from typing import Any

from .event import Event
from .records import ObjectRecord
from .tx import Tx

MOVES = ("created", "transition")  # event kinds that move the object between states


def move_event(tx: Tx, record: ObjectRecord, kind: str, transition: str, data: Any) -> Event:
    """The event of a created or moved object (`kind` in MOVES): an `Event` (event.py)."""
    return Event(tx.index, record.machine, record.id, kind, transition, record.previous_state,
                 record.state, record.version, data, tx.now_iso)


def transition_event(
    tx: Tx, record: ObjectRecord, kind: str, transition: str, data: Any
) -> dict[str, Any]:
    """An event as a dict, for the kinds that add keys of their own (removed, task, vote...)."""
    return {
        "index": tx.index,
        "machine": record.machine,
        "object": record.id,
        "kind": kind,
        "transition": transition,
        "from": record.previous_state if kind in MOVES else record.state,
        "to": None if kind == "removed" else record.state,
        "version": record.version,
        "data": data,
        "at": tx.now_iso,
    }


def remove_object(tx: Tx, record: ObjectRecord, reason: str) -> None:
    key = (record.machine, record.id)
    tx.publish({**transition_event(tx, record, "removed", "", None), "reason": reason})
    entry = tx.machine(record.machine)
    if entry is not None:
        tx.put_machine(entry.name, entry.with_objects(record.revision, -1))
    tx.put_object(key, None)
    tx.put_tombstone(key, record.version)
