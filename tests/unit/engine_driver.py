"""A tiny driver that feeds entries to the pure engine, as the Raft adapter would."""

from __future__ import annotations

from typing import Any

from cluster.core import codec
from cluster.core.engine import apply
from cluster.core.entries import Command, Entry, PutMachine, Tick, Transition
from cluster.core.outcome import Outcome
from cluster.core.state import ClusterState
from schema_lang import load_example

T0 = 1_795_000_000_000  # 2026-11-18, ms since the epoch

LOCK = load_example("lock")  # SPEC section 3, verbatim


class Driver:
    def __init__(self, state: ClusterState | None = None) -> None:
        self.state = state or ClusterState()
        self.index = 0
        self.now = T0

    def run(self, command: Command, *, at: int | None = None, key: str | None = None) -> Outcome:
        self.index += 1
        entry = Entry(
            command, at_ms=self.now if at is None else at, idempotency_key=key, index=self.index
        )
        return apply(self.state, entry)

    def machine(self, name: str, source: str) -> Outcome:
        outcome = self.run(PutMachine(name, source))
        assert outcome.ok, outcome.error
        return outcome

    def move(
        self,
        machine: str,
        oid: str,
        transition: str,
        data: dict[str, Any] | None = None,
        *,
        expected_version: int | None = None,
        key: str | None = None,
    ) -> Outcome:
        return self.run(Transition(machine, oid, transition, data, expected_version), key=key)

    def moves(self, machine: str, oid: str, transition: str, count: int) -> None:
        """`count` applied transitions of one object, each with data {"n": i}."""
        for n in range(count):
            outcome = self.move(machine, oid, transition, {"n": n})
            assert outcome.ok, outcome.error

    def tick(self, at: int) -> Outcome:
        self.now = at
        return self.run(Tick())

    def snapshot(self) -> bytes:
        return codec.dumps(self.state)

    def obj(self, machine: str, oid: str) -> dict[str, Any] | None:
        record = self.state.get_object(machine, oid)
        return record.to_json() if record else None
