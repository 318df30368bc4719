"""A straight-line `put` against the engine's own path, on one core (issue 14, round eighteen).

Experiment only, not the product: what a path specialised to machines like the benchmark's
`register` (one candidate leaving the state, a `$dst` guard, merged data; no `set`, `then`,
votes, tasks, timeout or invariant) would save. Anything else goes the general way.

Run from this folder, in a checkout where `./scripts/up` made `.venv`:
    ../../../.venv/bin/python straight_put.py base
    ../../../.venv/bin/python straight_put.py straight
"""

import sys

sys.path.insert(0, "../../..")

from cluster.bench.core import register_batches  # noqa: E402
from cluster.core import engine  # noqa: E402
from cluster.core.event import Event  # noqa: E402
from cluster.core.limits import check_data  # noqa: E402
from cluster.core.machines import compiled  # noqa: E402
from cluster.core.outcome import Outcome  # noqa: E402
from cluster.core.records import ObjectRecord  # noqa: E402
from cluster.core.transitions import apply_transition_command  # noqa: E402
from schema_lang.limits import ADVANCE_STEPS  # noqa: E402
from schema_lang.model import EvalContext, ObjectView  # noqa: E402


def straight(tx, cmd):
    entry, record = tx.machine_and_object(cmd.machine, cmd.id)
    if entry is None or record is None or record.pending is not None or cmd.expected_version is not None:
        return apply_transition_command(tx, cmd)
    machine = compiled(entry, record.revision)
    state = record.state
    matching = machine.leaving.get((cmd.transition, state))
    if matching is None or len(matching) != 1:
        return apply_transition_command(tx, cmd)
    d = matching[0]
    to = d.to or state
    sd = machine.states[to]
    if (d.follows is not None or d.requires or d.src is not None or d.set_fields
            or d.votes is not None or d.then or d.emit or d.restart or d.data_mode != "merge"
            or sd.data is not None or sd.timeout is not None or sd.terminal
            or (to != state and sd.tasks)):
        return apply_transition_command(tx, cmd)
    payload = cmd.data or {}
    size = check_data(payload, "the request's data")
    budget = tx.budget
    budget.priced += d.cost + ADVANCE_STEPS
    budget.used += d.cost + ADVANCE_STEPS
    if budget.used > budget.limit or size >> 10:
        return apply_transition_command(tx, cmd)  # (an experiment: no refund of the steps)
    if d.dst is not None:
        ctx = EvalContext(payload, record.data, ObjectView(cmd.id, record.version, state),
                          tx.now_iso, budget.meter)
        if d.dst(ctx):
            return apply_transition_command(tx, cmd)
    data = {**record.data, **payload} if record.data else payload
    version = record.version + 1
    new = ObjectRecord(machine.name, cmd.id, record.revision, to, state, data, version,
                       record.generation, None, record.tasks, record.created_at_ms, tx.now_ms,
                       None, tx.index,
                       record.applied if d.name in record.applied else (*record.applied, d.name))
    event = Event(tx.index, machine.name, cmd.id, "transition", d.name, state, to, version,
                  payload, tx.now_iso)
    tx.put_object((machine.name, cmd.id), new, event, machine.history)
    return Outcome("applied", {"event": event}, None, (), (), new)


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "base"
    if mode == "straight":
        engine.apply_transition_command = straight  # the batch loop's per-operation call
    for _ in range(3):
        result = register_batches(200_000)  # `bench core`'s own line, GC as on a node
        print(f"{mode}: {result.per_second:,.0f} puts/s ({1e6 / result.per_second:.2f} us a put)")
