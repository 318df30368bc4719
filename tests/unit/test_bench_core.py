"""`./scripts/bench core` runs every line it prints, each applying what it claims to: a
refused transition stops it (a benchmark of refusals would measure the wrong thing)."""

from __future__ import annotations

import pytest

from cluster.bench.core import _lock_state, applied_as_a_node, register_batches, run_core
from cluster.core.entries import Batch, Entry, Transition


def test_every_line_runs_and_counts_what_it_applied() -> None:
    results = run_core(0.005)
    assert [r.name.split(" (")[0] for r in results] == [
        "compiled guard evaluations", "applied transitions", "applied transitions in batches of 100",
        "register puts in batches of 100, decoded",
        "events kept by the window, 100 an entry"]
    assert all(r.operations >= 1_000 and r.per_second > 0 for r in results)


def test_the_batch_workload_applies_every_put() -> None:
    result = register_batches(1_000, objects=50)  # each object put 20 times
    assert result.operations == 1_000


def test_a_refusal_inside_a_batch_stops_the_run() -> None:
    state = _lock_state(2)
    refused = Entry(Batch((Transition("lock", "l0", "acquire", {"owner": "w1"}),
                           Transition("lock", "l1", "release", {"owner": "w1"}))), at_ms=5, index=9)
    with pytest.raises(AssertionError, match="unexpectedly refused"):
        applied_as_a_node("batches", state, [refused], 2)  # l1 is free: its release is refused
