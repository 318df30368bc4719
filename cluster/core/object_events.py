"""The events a transition records, and removing an object (its last event).

Shared by transitions, staged voted changes (staging.py), votes, tasks and timers.
"""

from __future__ import annotations

from typing import Any

from .records import ObjectRecord
from .tx import Tx

MOVES = ("created", "transition")  # event kinds that move the object between states


def transition_event(
    tx: Tx, record: ObjectRecord, kind: str, transition: str, data: Any
) -> dict[str, Any]:
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
