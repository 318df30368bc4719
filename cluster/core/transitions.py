"""Applying a transition to an object: choose the candidate, advance, run `then` chains.

The flow of one transition: find the machine revision the object is pinned to,
refuse what cannot apply (pending change, wrong version), choose the candidate
(candidates.py: terminal state, no candidate leaving this state, guards), then
either propose a pending change (voted transitions, staging.py) or build the new
object record, issue tasks, schedule the state's timeout and run `then` chains.
"""

from __future__ import annotations

from typing import Any

from schema_lang.limits import ADVANCE_STEPS, THEN_DEPTH
from schema_lang.model import EvalContext, GuardFailure, MachineDef, TransitionDef

from .candidates import (
    candidate_failures,
    check_expected_version,
    choose,
    eval_context,
    resulting_data,
    transition_defs,
)
from .entries import Transition
from .event import Event
from .limits import check_data
from .machines import compiled, require_machine
from .object_events import move_event, remove_object
from .outcome import Outcome, Rejected
from .records import MachineEntry, ObjectRecord, TaskRecord
from .staging import propose_change, stage_change
from .tx import Tx

MAX_THEN_DEPTH = THEN_DEPTH


def apply_transition_command(tx: Tx, cmd: Transition) -> Outcome:
    # the common case without a call; require_machine/transition_defs word the refusals
    entry, record = tx.machine_and_object(cmd.machine, cmd.id)
    if entry is None:
        entry = require_machine(tx, cmd.machine)
    machine = compiled(entry, record.revision if record is not None else None)
    payload = cmd.data or {}
    payload_size = check_data(payload, "the request's data")
    defs = machine.transitions.get(cmd.transition) or transition_defs(machine, cmd.transition)
    if cmd.expected_version is not None:
        check_expected_version(record, cmd.expected_version)
    if record is not None and record.pending is not None:
        raise Rejected(
            "pending_change",
            f"object '{cmd.id}' has a pending change '{record.pending.change}' "
            f"({record.pending.transition}) waiting for votes; vote on it or withdraw it first",
        )
    chosen, ctx, data = choose(tx, machine, record, cmd.id, cmd.transition, defs, payload,
                               payload_size)
    if chosen.votes is not None and record is not None:
        return propose_change(tx, record, chosen, payload)
    new_record, event = advance(tx, entry, machine, record, cmd.id, chosen, payload,
                                checked=(ctx, data))
    # positional: status, raw_body, error, events, results, record
    return Outcome("created" if record is None else "applied", {"event": event}, None, (), (),
                   new_record)


def advance(
    tx: Tx,
    entry: MachineEntry,
    machine: MachineDef,
    record: ObjectRecord | None,
    oid: str,
    d: TransitionDef,
    payload: dict[str, Any],
    depth: int = 0,
    checked: tuple[EvalContext, dict[str, Any]] | None = None,
) -> tuple[ObjectRecord, Event]:
    """Applies a chosen candidate; returns the final record (after `then`) and its event.

    `checked`: the context and resulting data `choose` computed for this candidate
    against this same record (so they are not computed twice).
    """
    budget = tx.budget  # tx.charge(ADVANCE_STEPS), inline
    budget.priced += ADVANCE_STEPS
    budget.used += ADVANCE_STEPS
    if budget.used > budget.limit:
        budget.meter(0)  # raises BudgetExceeded
    if checked is not None:
        ctx, data = checked
    else:
        ctx = eval_context(tx, record, oid, payload)
        data = resulting_data(d, record, ctx)
    now = tx.now_ms
    if record is None:
        to = d.to or ""
        entered = True
        # a new object continues above the last version its id had (fencing tokens only grow)
        version = tx.version_before((machine.name, oid)) + 1
    else:
        to = d.to or record.state
        entered = to != record.state
        version = record.version + 1
    state_def = machine.states[to]
    expires_at = now + state_def.timeout.after_ms if state_def.timeout else None
    if entered:
        tasks = issue_tasks(tx, state_def.tasks) if state_def.tasks else ()
    else:
        tasks = record.tasks if record else ()
    if record is None:  # positional: the field order of ObjectRecord
        new_record = ObjectRecord(machine.name, oid, machine.revision, to, None, data, version, 1,
                                  None, tasks, now, now, expires_at, tx.index, (d.name,))
    else:
        new_record = ObjectRecord(
            machine.name, oid, record.revision, to, record.state, data, version,
            record.generation + 1 if d.restart else record.generation, None, tasks,
            record.created_at_ms, now, expires_at, tx.index,
            record.applied if d.name in record.applied and not d.restart
            else applied_names(record, d))
    key = (machine.name, oid)
    event = move_event(
        tx, new_record, "created" if record is None else "transition", d.name, payload
    )
    if record is None:
        entry = entry.with_objects(new_record.revision, +1)
        tx.put_machine(entry.name, entry)
        if version > 1:  # created again: the object carries its version, not a tombstone
            tx.put_tombstone(key, None)
    tx.put_object(key, new_record, event, machine.history)
    if d.emit:
        tx.publish({**event.as_dict(), "kind": "emitted", "event": d.emit})
    if entered and new_record.tasks:
        moved = event.as_dict()
        for task in new_record.tasks:  # the feed tells workers; the history keeps reports
            tx.publish({**moved, "kind": "task", "data": task.config, "task": task.name,
                        "status": "issued", "error": None, "attempts": task.attempts})
    if expires_at is not None:
        tx.deadlines.append((expires_at, machine.name, oid, "timeout", version))  # schedule
    if state_def.terminal and state_def.remove:
        remove_object(tx, new_record, reason=f"entered terminal state '{to}'")
        return new_record, event
    if not d.then:
        return new_record, event
    final = run_then(tx, entry, machine, new_record, d, payload, depth)
    return final, event


def applied_names(record: ObjectRecord | None, d: TransitionDef) -> tuple[str, ...]:
    """Distinct transition names since the last restart (what `follows` looks at)."""
    if d.restart or record is None:
        return (d.name,)
    return record.applied if d.name in record.applied else (*record.applied, d.name)


def issue_tasks(tx: Tx, tasks: tuple[Any, ...]) -> tuple[TaskRecord, ...]:
    if not tasks:
        return ()
    return tuple(
        TaskRecord(t.name, "pending", dict(t.config), attempts=1, updated_at_ms=tx.now_ms)
        for t in tasks
    )

def run_then(
    tx: Tx,
    entry: MachineEntry,
    machine: MachineDef,
    record: ObjectRecord,
    d: TransitionDef,
    payload: dict[str, Any],
    depth: int,
) -> ObjectRecord:
    for step in d.then:
        if depth + 1 > MAX_THEN_DEPTH:
            raise Rejected(
                "invalid_request",
                f"'then' chain of '{d.name}' is deeper than {MAX_THEN_DEPTH} transitions",
            )
        tx.charge(step.cost)
        ctx = eval_context(tx, record, record.id, payload)
        if step.condition is not None and step.condition(ctx):
            continue
        candidates = machine.transitions.get(step.transition, ())
        terminal = machine.states[record.state].terminal
        chosen = next(
            (
                c
                for c in candidates
                if c.leaves(record.state, terminal)
                and not charged_failures(tx, machine, record, c, ctx)
            ),
            None,
        )
        if chosen is None:
            continue  # a chained step that cannot apply here is skipped, like a Choice default
        if chosen.votes is not None:
            return stage_change(tx, record, chosen, payload)  # the chain waits for the votes
        current = tx.machine(entry.name) or entry
        record, _ = advance(tx, current, machine, record, record.id, chosen, payload, depth + 1)
        if tx.get_object((record.machine, record.id)) is None:
            break
    return record


def charged_failures(
    tx: Tx, machine: MachineDef, record: ObjectRecord, d: TransitionDef, ctx: EvalContext
) -> list[GuardFailure]:
    tx.charge(d.cost)
    return candidate_failures(machine, record, d, ctx)
