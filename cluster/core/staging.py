"""Staging a voted transition as the object's pending change (votes.py counts the votes).

Whatever fires a voted transition (a request, a `then` step, the `next` of
completed tasks, a state timeout) stages it here: it never applies unvoted.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from schema_lang.model import TransitionDef

from .machines import compiled
from .object_events import transition_event
from .outcome import Outcome
from .records import ObjectRecord, PendingChange, replace
from .tx import Tx


def change_id(
    oid: str, base_version: int, transition: str, data: dict[str, Any], index: int
) -> str:
    """Unique per proposal: the log index tells apart the same change proposed again (after
    a withdrawal, or on an object removed and created again), so a vote or deadline meant
    for an earlier proposal is `stale_change` / skipped, never counted for the new one."""
    digest = hashlib.sha256()
    digest.update(f"{oid}\x00{base_version}\x00{transition}\x00{index}\x00".encode())
    digest.update(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()[:32]


def propose_change(
    tx: Tx, record: ObjectRecord, d: TransitionDef, payload: dict[str, Any]
) -> Outcome:
    updated = stage_change(tx, record, d, payload)
    assert updated.pending is not None
    return Outcome("pending", {"pending": updated.pending.to_json()}, record=updated)


def stage_change(
    tx: Tx, record: ObjectRecord, d: TransitionDef, payload: dict[str, Any]
) -> ObjectRecord:
    """Makes a voted transition the object's pending change, whatever fired it (a request, a
    `then` step, the `next` of completed tasks, a state timeout): it never applies unvoted."""
    votes = d.votes
    assert votes is not None
    expires = tx.now_ms + votes.timeout_ms if votes.timeout_ms else None
    pending = PendingChange(
        change=change_id(record.id, record.version, d.name, payload, tx.index),
        transition=d.name,
        data=payload,
        base_version=record.version,
        votes={},
        voters=votes.voters,
        required=votes.required(),
        proposed_at_ms=tx.now_ms,
        expires_at_ms=expires,
    )
    updated = replace_pending(tx, record, pending)
    event = {
        **transition_event(tx, updated, "vote", d.name, payload),
        "outcome": "proposed",
        "change": pending.change,
        "tally": {"approve": 0, "reject": 0, "required": pending.required},
    }
    tx.record_event((record.machine, record.id), event, history_limit(tx, record))
    if expires is not None:
        tx.schedule((expires, record.machine, record.id, "vote", pending.change))
    return updated


def replace_pending(tx: Tx, record: ObjectRecord, pending: PendingChange | None) -> ObjectRecord:
    updated = replace(record, pending=pending, updated_at_ms=tx.now_ms, index=tx.index)
    tx.put_object((record.machine, record.id), updated)
    return updated


def history_limit(tx: Tx, record: ObjectRecord) -> int:
    entry = tx.machine(record.machine)
    return compiled(entry, record.revision).history if entry is not None else 0
