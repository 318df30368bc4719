"""Choosing a transition's candidate: refuse what cannot apply, evaluate the guards.

`choose` finds the first candidate leaving the object's state whose `follows`,
`requires`, `$dst`/`$src` guards and the target state's data invariant pass, and
returns it with the evaluation context and the resulting data it computed (so
`transitions.advance` does not compute them again). Refusals name what would apply.
"""

from __future__ import annotations

from typing import Any

from schema_lang.limits import DATA_STEPS_PER_KIB, MAX_DATA_BYTES
from schema_lang.model import EvalContext, GuardFailure, MachineDef, ObjectView, TransitionDef

from .limits import check_data, check_merged, encoded_size
from .outcome import Rejected
from .records import ObjectRecord
from .tx import Tx

_NONE: frozenset[str] = frozenset()
_NO_PROBLEMS: list[GuardFailure] = []  # never returned, never changed
_CONTAINER = dict | list | str  # built once (a union in a loop is built per pass)


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


def choose(
    tx: Tx,
    machine: MachineDef,
    record: ObjectRecord | None,
    oid: str,
    name: str,
    defs: tuple[TransitionDef, ...],
    payload: dict[str, Any],
    payload_size: int | None = None,
) -> tuple[TransitionDef, EvalContext, dict[str, Any]]:
    """The first candidate whose `from` matches and whose conditions pass, with the
    evaluation context and the resulting data it computed (callers that only need the
    candidate take `[0]`). `payload_size`: the payload's size as JSON, if measured."""
    state = record.state if record is not None else None
    # the candidates leaving this state, found when the revision was compiled; a name and
    # state that are not there are refused, in `leaving_candidates`'s order
    matching = (machine.leaving.get((name, state))
                or leaving_candidates(machine, record, oid, name, defs))
    ctx = EvalContext(  # eval_context, inline
        payload,
        record.data if record is not None else {},
        ObjectView(oid, record.version, state) if record is not None else ObjectView(oid, 0, None),
        tx.now_iso,
        tx.budget.meter,
    )
    failures: list[list[GuardFailure]] = []
    budget = tx.budget
    for candidate in matching:
        budget.priced += candidate.cost  # tx.charge, inline
        budget.used += candidate.cost
        if budget.used > budget.limit:
            budget.meter(0)  # raises BudgetExceeded
        problems, data = checked_data(machine, record, candidate, ctx, payload_size)
        if not problems:
            return candidate, ctx, data
        failures.append(problems)
    raise guard_rejection(name, state, machine.allowed_from(state), matching, failures)


def leaving_candidates(
    machine: MachineDef,
    record: ObjectRecord | None,
    oid: str,
    name: str,
    defs: tuple[TransitionDef, ...],
) -> tuple[TransitionDef, ...]:
    """The candidates of `name` leaving the object's state (`MachineDef.leaving`, worked
    out), or the refusal that says why none does."""
    state = record.state if record is not None else None
    if record is None and not any(d.creates for d in defs):
        creators = machine.allowed_from(None)
        raise Rejected(
            "object_not_found",
            f"object '{oid}' of machine '{machine.name}' does not exist "
            f"(create it with: {', '.join(creators) or 'no creating transition'})",
        )
    if record is not None and defs[0].creates and all(d.creates for d in defs):
        raise Rejected(
            "object_exists",
            f"object '{oid}' already exists (state '{state}', version {record.version})",
        )
    terminal = state is not None and machine.states[state].terminal
    if terminal:
        raise Rejected(
            "terminal_state", f"object '{oid}' is in terminal state '{state}': nothing can leave it"
        )
    matching = tuple(d for d in defs if d.leaves(state, terminal))
    if not matching:
        allowed = machine.allowed_from(state)
        raise Rejected(
            "transition_not_allowed",
            f"transition '{name}' is not allowed from state '{state}' "
            f"(allowed: {', '.join(allowed) or 'none'})",
            [{"state": state, "allowed": allowed}],
        )
    return matching


def guard_rejection(
    name: str,
    state: str | None,
    allowed: list[str],
    matching: tuple[TransitionDef, ...],
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
    machine: MachineDef,
    record: ObjectRecord | None,
    d: TransitionDef,
    ctx: EvalContext,
    payload_size: int | None = None,
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
    problems: list[GuardFailure] = [
        GuardFailure(f"$dst.{f}", "required", f"$dst.{f} is required")
        for f in d.requires
        if f not in ctx.dst
    ] if d.requires else _NO_PROBLEMS
    if d.dst is not None:
        found = d.dst(ctx)
        if found:
            problems = problems + found  # never in place: _NO_PROBLEMS is shared
    if d.src is not None:
        found = d.src(ctx)
        if found:
            problems = problems + found
    if problems:
        return problems, {}
    try:
        new_data = resulting_data(d, record, ctx, payload_size)
    except Rejected as exc:
        if exc.rejection.code != "guard_failed":
            raise  # a limit, not a guard: the request is refused as it is
        return [GuardFailure("set", "set", exc.rejection.message)], {}
    invariant = machine.states[d.to or (record.state if record else "")].data
    if invariant is not None:
        return invariant(EvalContext(new_data, ctx.src, ctx.obj, ctx.now, ctx.meter)), new_data
    return [], new_data


def resulting_data(
    d: TransitionDef, record: ObjectRecord | None, ctx: EvalContext, dst_size: int | None = None
) -> dict[str, Any]:
    """The object's data after the transition (data mode, then `set`), checked against the
    data limits. `dst_size`: the size of `ctx.dst` as JSON, if known (checked already)."""
    mode = d.data_mode
    if mode == "keep":
        data = dict(record.data) if record is not None else {}
    elif mode == "replace" or record is None or not record.data:
        dst = ctx.dst
        # the payload dict itself when `set` will not add to it: a record's data is never
        # changed in place, nor is an event's (which holds the same payload)
        shared = dst.__class__ is dict and not d.set_fields
        data = dst if shared else dict(dst)  # type: ignore[assignment]
    else:
        data = {**record.data, **ctx.dst}
    if d.set_fields:
        _set_fields(d, data, ctx)
    elif dst_size is not None and mode != "keep" and len(data) == len(ctx.dst):
        # without `set`, merged data with no key beyond the payload's holds exactly the
        # payload's pairs (the payload wins), and JSON's size does not depend on key
        # order: it is the payload's size, measured and checked already
        if dst_size >> 10:
            meter(ctx, dst_size)
        return data
    # the payload and the stored data passed `check_data` already (when checked or
    # stored): only what `set` computed is walked again, the size is measured whole
    fresh = frozenset(field for field, _ in d.set_fields) if d.set_fields else _NONE
    size = check_merged(
        data, lambda: f"the data after transition '{d.name}' ({d.data_mode}, set)", fresh)
    if size >> 10:
        meter(ctx, size)
    return data


def _set_fields(d: TransitionDef, data: dict[str, Any], ctx: EvalContext) -> None:
    computed = 0  # bytes `set` added: many fields copying the data must not pile up
    for field, template in d.set_fields:
        try:
            data[field] = value = template(ctx)
        except Exception as exc:  # a template's runtime error is the request's fault
            raise Rejected("guard_failed", f"set.{field} could not be computed: {exc}") from None
        if isinstance(value, _CONTAINER):
            size = len(value) if isinstance(value, str) else encoded_size(value)
            meter(ctx, size)
            computed += size
            if computed > MAX_DATA_BYTES:
                check_data(data, f"the data after set.{field}")


def meter(ctx: EvalContext, size: int) -> None:
    """Charges the steps of handling `size` bytes of data (DATA_STEPS_PER_KIB)."""
    if ctx.meter is not None:
        ctx.meter(DATA_STEPS_PER_KIB * (size >> 10))
