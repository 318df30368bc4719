"""Deadlines kept in the state and fired by `Tick` entries.

The leader proposes a `Tick` when the earliest deadline is due by its clock; the
entry's timestamp, not any node's clock, decides what fires, so every node fires
the same deadlines. Deadlines are never removed early: one that no longer
applies (the object moved on, the change was decided) is skipped when it comes
due. A deadline fires only if the object or change it was set for still waits
for exactly that moment (`expires_at_ms == due`): versions restart at 1 when an
object is removed and created again, and a change proposed again after a
withdrawal is a new proposal, so a version or change id alone could let an old
deadline fire on a new incarnation.
"""

from __future__ import annotations

from schema_lang.limits import MAX_TRANSITION_STEPS

from .candidates import choose, transition_defs
from .machines import compiled
from .object_events import transition_event
from .outcome import Outcome, Rejected
from .records import replace
from .staging import stage_change
from .state import Deadline
from .transitions import advance
from .tx import Tx
from .votes import expire_change


def tick(tx: Tx) -> Outcome:
    """Fires the due deadlines, as many as the entry's step budget affords.

    One deadline's work is at most MAX_TRANSITION_STEPS (the cost model), so a
    deadline is started only while that much budget is left; the rest stay due
    and the next Tick fires them. Every tick fires at least one.
    """
    fired = 0
    # Popping here, outside the overlay, is safe: a Tick never fails as a whole.
    due = tx.state.pop_due_deadlines(tx.now_ms)
    for position, deadline in enumerate(due):
        if position > 0 and tx.budget.left <= MAX_TRANSITION_STEPS:
            for later in due[position:]:
                tx.state.push_deadline(later)
            break
        step = tx.child()
        tx.charge(1)
        try:
            if fire(step, deadline):
                step.merge_into_parent()
                fired += 1
        except Rejected:
            pass  # e.g. the timeout transition's guards refuse: the object stays as it is
    return Outcome("ok", {"fired": fired})


def fire(tx: Tx, deadline: Deadline) -> bool:
    due, machine_name, oid, kind, reference = deadline
    record = tx.get_object((machine_name, oid))
    if record is None:
        return False
    if kind == "vote":
        return expire_change(tx, record, reference, due)
    if record.version != reference or record.expires_at_ms != due:
        return False  # a later transition (or a new incarnation) restarted or cleared the timer
    entry = tx.machine(machine_name)
    if entry is None:
        return False
    machine = compiled(entry, record.revision)
    timeout = machine.states[record.state].timeout
    if timeout is None:
        return False
    # a due timeout wins over a pending vote: the change is dropped with the move
    cleared = replace(record, pending=None)
    defs = transition_defs(machine, timeout.transition)
    chosen = choose(tx, machine, cleared, oid, timeout.transition, defs, {})[0]
    tx.publish({  # on the feed before what it causes; the history keeps the move
        **transition_event(tx, record, "expired", timeout.transition, None),
        "expired": "timeout",
        "reason": f"state '{record.state}' timed out",
    })
    if chosen.votes is not None:  # a voted timeout transition is proposed, not applied
        stage_change(tx, cleared, chosen, {})
        return True
    advance(tx, entry, machine, cleared, oid, chosen, {})
    return True
