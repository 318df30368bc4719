"""Applying a transition to an object: choose the candidate, check it, advance.

The flow of one transition: find the machine revision the object is pinned to,
refuse what cannot apply (pending change, wrong version, terminal state, no
candidate leaving this state), evaluate the candidates' guards in order, then
either propose a pending change (voted transitions) or build the new object
record, issue tasks, schedule the state's timeout and run `then` chains.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from schema_lang.limits import ADVANCE_STEPS, DATA_STEPS_PER_KIB, MAX_DATA_BYTES, THEN_DEPTH
from schema_lang.model import EvalContext, GuardFailure, MachineDef, ObjectView, TransitionDef

from .entries import Transition
from .limits import check_data, encoded_size
from .machines import compiled, require_machine
from .outcome import Outcome, Rejected
from .records import MachineEntry, ObjectRecord, PendingChange, TaskRecord, replace
from .tx import Tx

MAX_THEN_DEPTH = THEN_DEPTH
MOVES = ("created", "transition")  # event kinds that move the object between states


def apply_transition_command(tx: Tx, cmd: Transition) -> Outcome:
    entry = require_machine(tx, cmd.machine)
    record = tx.get_object((cmd.machine, cmd.id))
    machine = compiled(entry, record.revision if record else None)
    payload = cmd.data or {}
    check_data(payload, "the request's data")
    defs = transition_defs(machine, cmd.transition)
    check_expected_version(record, cmd.expected_version)
    if record is not None and record.pending is not None:
        raise Rejected(
            "pending_change",
            f"object '{cmd.id}' has a pending change '{record.pending.change}' "
            f"({record.pending.transition}) waiting for votes; vote on it or withdraw it first",
        )
    chosen, ctx, data = choose(tx, machine, record, cmd.id, cmd.transition, defs, payload)
    if chosen.votes is not None and record is not None:
        return propose_change(tx, record, chosen, payload)
    new_record, event = advance(tx, entry, machine, record, cmd.id, chosen, payload,
                                checked=(ctx, data))
    return Outcome("created" if record is None else "applied", {"event": event}, record=new_record)


def transition_defs(machine: MachineDef, name: str) -> tuple[TransitionDef, ...]:
    defs = machine.transitions.get(name)
    if defs is None:
        raise Rejected(
            "transition_not_found",
            f"machine '{machine.name}' has no transition '{name}' "
            f"(transitions: {', '.join(sorted(machine.transitions))})",
        )
    return defs


def check_expected_version(record: ObjectRecord | None, expected: int | None) -> None:
    if expected is None:
        return
    actual = record.version if record is not None else 0
    if expected != actual:
        raise Rejected(
            "version_conflict",
            f"expected version {expected} but the object is at version {actual}",
            [{"expected": expected, "actual": actual}],
        )


def eval_context(
    tx: Tx, record: ObjectRecord | None, oid: str, payload: dict[str, Any]
) -> EvalContext:
    return EvalContext(
        dst=payload,
        src=record.data if record is not None else {},
        obj=ObjectView(oid, record.version if record else 0, record.state if record else None),
        now=tx.now_iso,
        meter=tx.budget.meter,
    )


def choose_candidate(
    tx: Tx,
    machine: MachineDef,
    record: ObjectRecord | None,
    oid: str,
    name: str,
    defs: tuple[TransitionDef, ...],
    payload: dict[str, Any],
) -> TransitionDef:
    """The first candidate whose `from` matches and whose conditions pass."""
    return choose(tx, machine, record, oid, name, defs, payload)[0]


def choose(
    tx: Tx,
    machine: MachineDef,
    record: ObjectRecord | None,
    oid: str,
    name: str,
    defs: tuple[TransitionDef, ...],
    payload: dict[str, Any],
) -> tuple[TransitionDef, EvalContext, dict[str, Any]]:
    """`choose_candidate`, with the evaluation context and the resulting data it computed."""
    state = record.state if record is not None else None
    if record is None and not any(d.creates for d in defs):
        creators = machine.allowed_from(None)
        raise Rejected(
            "object_not_found",
            f"object '{oid}' of machine '{machine.name}' does not exist "
            f"(create it with: {', '.join(creators) or 'no creating transition'})",
        )
    if record is not None and all(d.creates for d in defs):
        raise Rejected(
            "object_exists",
            f"object '{oid}' already exists (state '{state}', version {record.version})",
        )
    terminal = state is not None and machine.states[state].terminal
    if terminal:
        raise Rejected(
            "terminal_state", f"object '{oid}' is in terminal state '{state}': nothing can leave it"
        )
    matching = [d for d in defs if d.leaves(state, terminal)]
    if not matching:
        allowed = machine.allowed_from(state)
        raise Rejected(
            "transition_not_allowed",
            f"transition '{name}' is not allowed from state '{state}' "
            f"(allowed: {', '.join(allowed) or 'none'})",
            [{"state": state, "allowed": allowed}],
        )
    ctx = eval_context(tx, record, oid, payload)
    failures: list[list[GuardFailure]] = []
    for candidate in matching:
        tx.charge(candidate.cost)
        problems, data = checked_data(machine, record, candidate, ctx)
        if not problems:
            return candidate, ctx, data
        failures.append(problems)
    raise guard_rejection(name, state, machine.allowed_from(state), matching, failures)


def guard_rejection(
    name: str,
    state: str | None,
    allowed: list[str],
    matching: list[TransitionDef],
    failures: list[list[GuardFailure]],
) -> Rejected:
    if all(f and all(g.rule == "follows" for g in f) for f in failures):
        reasons = "; ".join(f[0].message for f in failures)
        return Rejected(
            "transition_not_allowed",
            f"transition '{name}' is not allowed now: {reasons}",
            [{"state": state, "allowed": allowed}],
        )
    details: list[dict[str, Any]] = []
    for candidate, problems in zip(matching, failures, strict=True):
        prefix = f"candidate to '{candidate.to or state}': " if len(matching) > 1 else ""
        details.extend(
            {"path": g.path, "rule": g.rule, "message": prefix + g.message} for g in problems
        )
    first = details[0]["message"]
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return Rejected("guard_failed", f"transition '{name}' refused: {first}{more}", details)


def candidate_failures(
    machine: MachineDef, record: ObjectRecord | None, d: TransitionDef, ctx: EvalContext
) -> list[GuardFailure]:
    return checked_data(machine, record, d, ctx)[0]


def checked_data(
    machine: MachineDef, record: ObjectRecord | None, d: TransitionDef, ctx: EvalContext
) -> tuple[list[GuardFailure], dict[str, Any]]:
    """The candidate's guard failures, and (when there are none) the object's resulting data."""
    if d.follows is not None:
        applied = frozenset(record.applied) if record is not None else frozenset()
        if not d.follows.test(applied):
            return [
                GuardFailure(
                    "follows",
                    "follows",
                    f"'{d.name}' must follow {d.follows.description} since the last restart "
                    f"(applied: {', '.join(sorted(applied)) or 'none'})",
                )
            ], {}
    problems = [
        GuardFailure(f"$dst.{f}", "required", f"$dst.{f} is required")
        for f in d.requires
        if f not in ctx.dst
    ]
    if d.dst is not None:
        problems.extend(d.dst(ctx))
    if d.src is not None:
        problems.extend(d.src(ctx))
    if problems:
        return problems, {}
    try:
        new_data = resulting_data(d, record, ctx)
    except Rejected as exc:
        if exc.rejection.code != "guard_failed":
            raise  # a limit, not a guard: the request is refused as it is
        return [GuardFailure("set", "set", exc.rejection.message)], {}
    invariant = machine.states[d.to or (record.state if record else "")].data
    if invariant is not None:
        return invariant(EvalContext(new_data, ctx.src, ctx.obj, ctx.now, ctx.meter)), new_data
    return [], new_data


def resulting_data(
    d: TransitionDef, record: ObjectRecord | None, ctx: EvalContext
) -> dict[str, Any]:
    current = record.data if record is not None else {}
    if d.data_mode == "replace":
        data = dict(ctx.dst)
    elif d.data_mode == "keep":
        data = dict(current)
    else:
        data = {**current, **ctx.dst}
    computed = 0  # bytes `set` added: many fields copying the data must not pile up
    for field, template in d.set_fields:
        try:
            data[field] = value = template(ctx)
        except Exception as exc:  # a template's runtime error is the request's fault
            raise Rejected("guard_failed", f"set.{field} could not be computed: {exc}") from None
        if isinstance(value, dict | list | str):
            size = len(value) if isinstance(value, str) else encoded_size(value)
            meter(ctx, size)
            computed += size
            if computed > MAX_DATA_BYTES:
                check_data(data, f"the data after set.{field}")
    size = check_data(data, f"the data after transition '{d.name}' ({d.data_mode}, set)")
    meter(ctx, size)
    return data


def meter(ctx: EvalContext, size: int) -> None:
    """Charges the steps of handling `size` bytes of data (DATA_STEPS_PER_KIB)."""
    if ctx.meter is not None:
        ctx.meter(DATA_STEPS_PER_KIB * (size >> 10))


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
) -> tuple[ObjectRecord, dict[str, Any]]:
    """Applies a chosen candidate; returns the final record (after `then`) and its event.

    `checked`: the context and resulting data `choose` computed for this candidate
    against this same record (so they are not computed twice).
    """
    tx.charge(ADVANCE_STEPS)
    ctx, data = checked if checked is not None else (eval_context(tx, record, oid, payload), None)
    to = d.to or (record.state if record else "")
    entered = record is None or to != record.state
    state_def = machine.states[to]
    # a new object continues above the last version its id had (fencing tokens only grow)
    version = (record.version if record else tx.version_before((machine.name, oid))) + 1
    expires_at = tx.now_ms + state_def.timeout.after_ms if state_def.timeout else None
    new_record = ObjectRecord(
        machine=machine.name,
        id=oid,
        revision=record.revision if record else machine.revision,
        state=to,
        previous_state=record.state if record else None,
        data=resulting_data(d, record, ctx) if data is None else data,
        version=version,
        generation=(record.generation if record else 1) + (1 if d.restart and record else 0),
        pending=None,
        tasks=issue_tasks(tx, state_def.tasks) if entered else (record.tasks if record else ()),
        created_at_ms=record.created_at_ms if record else tx.now_ms,
        updated_at_ms=tx.now_ms,
        expires_at_ms=expires_at,
        index=tx.index,
        applied=applied_names(record, d),
    )
    key = (machine.name, oid)
    event = transition_event(
        tx, new_record, "created" if record is None else "transition", d.name, payload
    )
    if record is None:
        entry = entry.with_objects(new_record.revision, +1)
        tx.put_machine(entry.name, entry)
        if version > 1:  # created again: the object carries its version, not a tombstone
            tx.put_tombstone(key, None)
    tx.put_object(key, new_record)
    tx.record_event(key, event, machine.history)
    if d.emit:
        tx.publish({**event, "kind": "emitted", "event": d.emit})
    if entered:
        for task in new_record.tasks:  # the feed tells workers; the history keeps reports
            tx.publish({**event, "kind": "task", "data": task.config, "task": task.name,
                        "status": "issued", "error": None, "attempts": task.attempts})
    if expires_at is not None:
        tx.schedule((expires_at, machine.name, oid, "timeout", version))
    if state_def.terminal and state_def.remove:
        remove_object(tx, new_record, reason=f"entered terminal state '{to}'")
        return new_record, event
    final = run_then(tx, entry, machine, new_record, d, payload, depth)
    return final, event


def applied_names(record: ObjectRecord | None, d: TransitionDef) -> tuple[str, ...]:
    """Distinct transition names since the last restart (what `follows` looks at)."""
    if d.restart or record is None:
        return (d.name,)
    return record.applied if d.name in record.applied else (*record.applied, d.name)


def issue_tasks(tx: Tx, tasks: tuple[Any, ...]) -> tuple[TaskRecord, ...]:
    return tuple(
        TaskRecord(t.name, "pending", dict(t.config), attempts=1, updated_at_ms=tx.now_ms)
        for t in tasks
    )


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
