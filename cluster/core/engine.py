"""`apply(state, entry) -> Outcome`: the one pure function every node runs on every entry.

Same state + same entry = same outcome and same new state on every node. No
clock, randomness or I/O: time is the entry's (never earlier than the last
applied entry's), and a rejected entry leaves the state exactly as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, cast

import msgspec
import orjson

from .codec import outcome_from_dict, outcome_to_dict
from .entries import (
    Barrier,
    Batch,
    Command,
    DeleteMachine,
    DeleteObject,
    Entry,
    Member,
    PutMachine,
    RetryTasks,
    TaskReport,
    Tick,
    Transition,
    Vote,
    Withdraw,
    command_to_dict,
)
from .event import json_default
from .limits import BudgetExceeded
from .machines import delete_machine, put_machine, require_machine
from .members import apply_member
from .object_events import remove_object
from .outcome import Outcome, Rejected, Rejection
from .records import IdempotencyRecord
from .state import ClusterState
from .tasks import report_task, retry_tasks
from .timers import tick
from .transitions import apply_transition_command
from .tx import Tx, begin_tx
from .votes import require_object, vote, withdraw

_replace = msgspec.structs.replace


def apply(state: ClusterState, entry: Entry) -> Outcome:
    command = entry.command
    kind = command.__class__  # entries' commands are final classes: no isinstance needed
    if kind is Barrier:
        return Outcome("ok", {"index": entry.index})
    if kind is Member:  # addresses only: no clock, no idempotency, no events
        try:
            return apply_member(state.members, cast(Member, command))
        except Rejected as exc:
            return Outcome.rejected(exc.rejection)
    now = entry.at_ms if entry.at_ms > state.clock_ms else state.clock_ms
    key = entry.idempotency_key
    fingerprint = ""
    if key:
        fingerprint = command_fingerprint(command)
        prior = state.idempotency.get(key)
        if prior is not None and prior.at_ms >= now - state.idempotency_window_ms:
            if prior.fingerprint != fingerprint:
                return Outcome.rejected(
                    Rejection(
                        "idempotency_key_reused",
                        f"Idempotency-Key '{key}' was already used for a different request; "
                        "use a new key for a new request",
                    )
                )
            replayed = outcome_from_dict(orjson.loads(prior.outcome))
            return msgspec.structs.replace(replayed, events=())
        if state.idempotency_full(key, now):
            return Outcome.rejected(idempotency_overloaded(state))
    tx = begin_tx(state, now, entry.index)
    try:
        outcome = DISPATCH[kind](tx, command)
    except Rejected as exc:
        return Outcome.rejected(exc.rejection)
    if outcome.status == "rejected":
        return outcome  # an atomic batch that failed: its results say why, nothing applies
    tx.commit()
    outcome = _replace(outcome, events=tuple(tx.events))
    if key:
        record = orjson.dumps(outcome_to_dict(outcome), default=json_default).decode()
        state.remember_idempotency(key, IdempotencyRecord(fingerprint, record, now))
    return outcome


def idempotency_overloaded(state: ClusterState) -> Rejection:
    """Keyed writes beyond what the table holds for the whole window are refused, never
    remembered for less than the promised window (a retry could then apply twice)."""
    window_s = state.idempotency_window_ms // 1000
    rate = state.idempotency_max_keys / max(window_s, 1)
    return Rejection(
        "overloaded",
        f"too many keyed writes: {state.idempotency_max_keys} Idempotency-Keys of the last "
        f"{window_s}s are remembered (about {rate:.0f} keyed writes/s sustained); retry later, "
        "or send writes that need no retry protection without a key",
    )


def command_fingerprint(command: Command) -> str:
    blob = orjson.dumps(command_to_dict(command), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()


def delete_object(tx: Tx, cmd: DeleteObject) -> Outcome:
    require_machine(tx, cmd.machine)
    record = require_object(tx, cmd.machine, cmd.id)
    remove_object(tx, record, reason="deleted by an administrator")
    return Outcome("ok", {"object": record.to_json(), "deleted": True})


def batch(tx: Tx, cmd: Batch) -> Outcome:
    """Operations apply in order; atomic batches are all or nothing.

    Each operation of a non-atomic batch is a step of the entry's `Tx` (`begin_step`):
    one that is refused takes back what it wrote, the others stay. An atomic batch
    needs no steps: a refused operation drops the whole entry."""
    results: list[Outcome] = []
    atomic = cmd.atomic
    for position, op in enumerate(cmd.operations):
        tx.charge(1)
        if not atomic:
            tx.begin_step()
        try:
            results.append(apply_transition_command(tx, op))
        except BudgetExceeded:
            raise  # the entry as a whole is past its budget: nothing of it applies
        except Rejected as exc:
            if atomic:
                return aborted_batch(len(cmd.operations), position, exc.rejection)
            tx.drop_step()
            results.append(Outcome.rejected(exc.rejection))
    tx.end_step()
    return Outcome("ok", {"count": len(results)}, results=tuple(results))


def aborted_batch(size: int, failed_at: int, failure: Rejection) -> Outcome:
    aborted = Outcome.rejected(
        Rejection("aborted", f"not applied: operation {failed_at} of this atomic batch failed")
    )
    results = tuple(Outcome.rejected(failure) if i == failed_at else aborted for i in range(size))
    return Outcome("rejected", error=failure, results=results)


def _tick(tx: Tx, _: Tick) -> Outcome:
    return tick(tx)


DISPATCH: dict[type, Callable[[Tx, Any], Outcome]] = {
    PutMachine: put_machine,
    DeleteMachine: delete_machine,
    Transition: apply_transition_command,
    DeleteObject: delete_object,
    Vote: vote,
    Withdraw: withdraw,
    TaskReport: report_task,
    RetryTasks: retry_tasks,
    Batch: batch,
    Tick: _tick,
}
