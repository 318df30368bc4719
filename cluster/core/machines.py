"""Machine definitions inside the state: put, delete, and the compiled form of a revision."""

from __future__ import annotations

from typing import Any

from schema_lang import MachineDef, SchemaError, compile_machine

from .entries import DeleteMachine, PutMachine
from .outcome import Outcome, Rejected
from .records import MachineEntry
from .tx import Tx

_compiled: dict[str, MachineDef] = {}
COMPILED_CACHE_SIZE = 1024


def compiled(entry: MachineEntry, revision: str | None = None) -> MachineDef:
    """The compiled machine of a revision.

    A revision names its definition exactly (a hash of it, the machine's name
    included), so caching by revision is a pure memo: it saves hashing the source
    on every entry.
    """
    key = revision or entry.revision
    machine = _compiled.get(key)
    if machine is None:
        if len(_compiled) >= COMPILED_CACHE_SIZE:
            _compiled.clear()
        machine = _compiled[key] = compile_machine(entry.sources[key], entry.name)
    return machine


def require_machine(tx: Tx, name: str) -> MachineEntry:
    entry = tx.machine(name)
    if entry is None:
        raise Rejected("machine_not_found", f"machine '{name}' does not exist")
    return entry


def machine_summary(machine: MachineDef) -> dict[str, Any]:
    return {"states": sorted(machine.states), "transitions": sorted(machine.transitions)}


def compile_definition(name: str, source: str) -> MachineDef:
    """The compiled definition, or `Rejected(invalid_schema)` with every problem."""
    try:
        return compile_machine(source, name)
    except SchemaError as exc:
        raise Rejected(
            "invalid_schema",
            f"machine '{name}' has {len(exc.problems)} problem(s): {exc}",
            [p.as_detail() for p in exc.problems],
        ) from None


def put_machine(tx: Tx, cmd: PutMachine) -> Outcome:
    machine = compile_definition(cmd.name, cmd.source)
    current = tx.machine(cmd.name)
    body = {"name": cmd.name, "revision": machine.revision, **machine_summary(machine)}
    if current is not None and current.revision == machine.revision:
        return Outcome("ok", {**body, "changed": False})
    if current is None:
        entry = MachineEntry(cmd.name, machine.revision, {machine.revision: cmd.source}, {})
    else:
        # keep only the revisions objects still use, plus the new current one
        sources = {r: s for r, s in current.sources.items() if r in current.objects_by_revision}
        sources[machine.revision] = cmd.source
        entry = MachineEntry(cmd.name, machine.revision, sources, current.objects_by_revision)
    tx.put_machine(cmd.name, entry)
    return Outcome("created" if current is None else "ok", {**body, "changed": True})


def delete_machine(tx: Tx, cmd: DeleteMachine) -> Outcome:
    entry = require_machine(tx, cmd.name)
    if entry.object_count > 0:
        raise Rejected(
            "machine_in_use",
            f"machine '{cmd.name}' still has {entry.object_count} object(s); delete them first",
        )
    tx.put_machine(cmd.name, None)
    return Outcome("ok", {"name": cmd.name, "deleted": True})
