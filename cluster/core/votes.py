"""Votes on a pending change: record a vote, apply on quorum, reject when unreachable."""

from __future__ import annotations

from typing import Any

from .candidates import choose, transition_defs
from .entries import Vote, Withdraw
from .machines import compiled, require_machine
from .object_events import transition_event
from .outcome import Outcome, Rejected
from .records import ObjectRecord, PendingChange, replace
from .staging import history_limit, replace_pending
from .transitions import advance
from .tx import Tx


def require_object(tx: Tx, machine: str, oid: str) -> ObjectRecord:
    record = tx.get_object((machine, oid))
    if record is None:
        raise Rejected("object_not_found", f"object '{oid}' of machine '{machine}' does not exist")
    return record


def vote(tx: Tx, cmd: Vote) -> Outcome:
    require_machine(tx, cmd.machine)
    record = require_object(tx, cmd.machine, cmd.id)
    pending = current_pending(record, cmd.change)
    if pending.voters is not None and cmd.voter not in pending.voters:
        raise Rejected(
            "not_a_voter",
            f"'{cmd.voter}' is not a voter of this change (voters: {', '.join(pending.voters)})",
        )
    previous = pending.votes.get(cmd.voter)
    if previous is not None:
        if previous != cmd.approve:
            raise Rejected(
                "vote_conflict",
                f"'{cmd.voter}' already voted {'approve' if previous else 'reject'}; "
                "a vote cannot be changed",
            )
        return Outcome("ok", vote_body(record, pending, "pending"))
    pending = replace(pending, votes={**pending.votes, cmd.voter: cmd.approve})
    if pending.approvals() >= pending.required:
        record_vote_event(tx, record, pending, "approved", cmd.voter)
        return apply_change(tx, record, pending)
    if unreachable(pending):
        return close_change(
            tx, record, pending, "rejected", "vote", "rejections made the quorum unreachable",
            voter=cmd.voter,
        )
    updated = replace_pending(tx, record, pending)
    record_vote_event(tx, updated, pending, "pending", cmd.voter)
    return Outcome("ok", vote_body(updated, pending, "pending"))


def withdraw(tx: Tx, cmd: Withdraw) -> Outcome:
    require_machine(tx, cmd.machine)
    record = require_object(tx, cmd.machine, cmd.id)
    if record.pending is None:
        raise Rejected("not_found", f"object '{cmd.id}' has no pending change to withdraw")
    return close_change(tx, record, record.pending, "withdrawn", "vote", "withdrawn by request")


def expire_change(tx: Tx, record: ObjectRecord, change: str, due: int) -> bool:
    """Rejects a pending change whose vote timeout passed; False when it is already gone
    (or when this deadline was set for an earlier proposal of the same change)."""
    pending = record.pending
    if pending is None or pending.change != change or pending.expires_at_ms != due:
        return False
    close_change(tx, record, pending, "expired", "expired", "the vote timeout passed")
    return True


def current_pending(record: ObjectRecord, change: str) -> PendingChange:
    pending = record.pending
    if pending is None:
        raise Rejected(
            "stale_change",
            f"object '{record.id}' has no pending change (change '{change}' was applied, "
            "rejected, withdrawn or expired)",
        )
    if pending.change != change:
        raise Rejected(
            "stale_change",
            f"change '{change}' is not the pending change of object '{record.id}' "
            f"(pending: '{pending.change}')",
        )
    return pending


def unreachable(pending: PendingChange) -> bool:
    if pending.voters is None:
        return pending.rejections() >= pending.required
    return pending.rejections() > len(pending.voters) - pending.required


def apply_change(tx: Tx, record: ObjectRecord, pending: PendingChange) -> Outcome:
    entry = require_machine(tx, record.machine)
    machine = compiled(entry, record.revision)
    cleared = replace(record, pending=None)
    payload = pending.data or {}
    try:
        defs = transition_defs(machine, pending.transition)
        chosen = choose(tx, machine, cleared, record.id, pending.transition, defs, payload)[0]
    except Rejected as exc:
        return close_change(tx, record, pending, "rejected", "vote", exc.rejection.message)
    new_record, event = advance(tx, entry, machine, cleared, record.id, chosen, payload)
    body = vote_body(new_record, pending, "applied")
    return Outcome("applied", {**body, "event": event})


def close_change(
    tx: Tx,
    record: ObjectRecord,
    pending: PendingChange,
    outcome: str,
    kind: str,
    reason: str,
    voter: str | None = None,
) -> Outcome:
    updated = replace_pending(tx, record, None)
    record_vote_event(tx, updated, pending, outcome, voter, kind=kind, reason=reason)
    return Outcome("ok", vote_body(updated, pending, outcome))


def record_vote_event(
    tx: Tx,
    record: ObjectRecord,
    pending: PendingChange,
    outcome: str,
    voter: str | None,
    *,
    kind: str = "vote",
    reason: str | None = None,
) -> None:
    event: dict[str, Any] = {
        **transition_event(tx, record, kind, pending.transition, pending.data),
        "change": pending.change,
        "outcome": outcome,
        "tally": tally(pending),
    }
    if voter is not None:
        event["voter"] = voter
        event["approve"] = pending.votes.get(voter)
    if reason is not None:
        event["reason"] = reason
    if kind == "expired":
        event["expired"] = "vote"
    tx.record_event((record.machine, record.id), event, history_limit(tx, record))


def tally(pending: PendingChange) -> dict[str, Any]:
    """The count of the change's votes so far, for the feed."""
    return {
        "approve": pending.approvals(),
        "reject": pending.rejections(),
        "required": pending.required,
    }


def vote_body(record: ObjectRecord, pending: PendingChange, outcome: str) -> dict[str, Any]:
    return {"object": record.to_json(), "pending": pending.to_json(), "outcome": outcome}
