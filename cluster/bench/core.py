"""Benchmarks of the pure core on one core: compiled guard evaluations, applied entries, and
the event window every node fills with their events.

No Raft, no HTTP: this measures what one node's apply loop can do at best, so
that cluster figures can be read against it. The cyclic GC runs as on a node: the
state is frozen once built and every FREEZE_EVERY transitions, and automatic young
collections come every YOUNG_THRESHOLD allocations (gc_policy).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cluster.core.engine import apply
from cluster.core.entries import Batch, Entry, PutMachine, Transition, decode, encode
from cluster.core.state import ClusterState
from cluster.events.window import EventWindow
from cluster.gc_policy import collect_and_freeze, raise_young_threshold
from schema_lang import compile_machine, load_example
from schema_lang.model import EvalContext, ObjectView

from .workloads import MACHINE, REGISTER_MACHINE, key_name


@dataclass(frozen=True)
class CoreResult:
    name: str
    operations: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.operations / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return f"{self.name:<44} {self.per_second:>12,.0f}/s  ({self.operations:,} in {self.seconds:.2f} CPU s)"


def timed(name: str, operations: int, body: Callable[[], Any]) -> CoreResult:
    # CPU time of this (single-threaded) process: on a shared box, wall time would
    # also count the time other processes held the core
    start = time.process_time()
    body()
    return CoreResult(name, operations, time.process_time() - start)


# A node collects and freezes what it allocated every second (cluster/gc_policy.py), so a
# full collection never walks its whole state; the benchmark does the same, timed, every
# this many applied transitions (a node at 40-50k/s does it every 40-50k). Without it the
# cyclic GC walked the state and the pre-built entries over and over (a third of the run).
FREEZE_EVERY = 20_000


def _freeze_at_start() -> tuple[int, int, int]:
    """What the node does once it has loaded its state (the entries are the log), and
    the young-generation threshold it runs with; returns the thresholds to restore."""
    collect_and_freeze()
    thresholds = gc.get_threshold()
    raise_young_threshold()
    return thresholds


def _as_before(thresholds: tuple[int, int, int]) -> None:
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def applied_as_a_node(name: str, state: ClusterState, entries: Sequence[Any], per_entry: int,
                      read: Callable[[Any, int], Entry] | None = None) -> CoreResult:
    """Applies `entries` of `per_entry` transitions each to `state`, timed, with the GC as on
    a node; `read` turns each into its `Entry` inside the timed loop (e.g. decodes its log
    bytes; `i` counts from 1). A refused transition, alone or in a batch, stops the run: a
    benchmark of refusals would measure the wrong thing."""

    def run() -> None:
        for i, item in enumerate(entries, 1):
            outcome = apply(state, item if read is None else read(item, i))
            if not outcome.ok or any(not result.ok for result in outcome.results):
                raise AssertionError(f"{name}: a transition was unexpectedly refused")
            if i % (FREEZE_EVERY // per_entry) == 0:
                collect_and_freeze()

    thresholds = _freeze_at_start()
    try:
        return timed(name, len(entries) * per_entry, run)
    finally:
        _as_before(thresholds)


def guard_evaluations(n: int) -> CoreResult:
    lock = compile_machine(load_example("lock"), "lock")
    guard = lock.transitions["acquire"][0].dst
    assert guard is not None
    ctx = EvalContext(
        {"owner": "worker-1"}, {}, ObjectView("x", 1, "free"), "2026-11-22T00:00:00.000Z"
    )

    def run() -> None:
        for _ in range(n):
            if guard(ctx):
                raise AssertionError("guard unexpectedly failed")

    return timed("compiled guard evaluations (lock acquire)", n, run)


def _lock_state(objects: int) -> ClusterState:
    state = ClusterState()
    apply(state, Entry(PutMachine("lock", load_example("lock")), at_ms=1))
    for i in range(objects):
        apply(state, Entry(Transition("lock", f"l{i}", "create"), at_ms=1, index=i + 2))
    return state


def transitions(n: int, objects: int = 1_000) -> CoreResult:
    state = _lock_state(objects)
    entries = []
    for i in range(n):
        oid = f"l{(i // 2) % objects}"
        name = "acquire" if i % 2 == 0 else "release"
        entries.append(
            Entry(
                Transition("lock", oid, name, {"owner": "w1"}), at_ms=2 + i, index=objects + 2 + i
            )
        )

    return applied_as_a_node(f"applied transitions (lock, {objects:,} objects)", state, entries, 1)


def batched_transitions(n: int, size: int = 100, objects: int = 1_000) -> CoreResult:
    state = _lock_state(objects)
    batches = []
    for b in range(n // size):
        name = "acquire" if b % 2 == 0 else "release"
        ops = tuple(
            Transition("lock", f"l{(b // 2 * size + j) % objects}", name, {"owner": "w1"})
            for j in range(size)
        )
        batches.append(Entry(Batch(ops), at_ms=2 + b, index=objects + 2 + b))

    return applied_as_a_node(f"applied transitions in batches of {size}", state, batches, size)


def _register_state(objects: int) -> ClusterState:
    """The batch workload's machine, then `objects` register objects created by the
    entries of indexes 2 to objects + 1."""
    state = ClusterState()
    apply(state, Entry(PutMachine(MACHINE, REGISTER_MACHINE), at_ms=1))
    for i in range(objects):
        apply(state, Entry(Transition(MACHINE, key_name(i), "create"), at_ms=1, index=i + 2))
    return state


def register_batches(n: int, size: int = 100, objects: int = 10_000) -> CoreResult:
    """The cluster's batch workload (`bench cluster --kinds batch`) as one node applies it:
    entries of `size` `put`s of 64-character values to `register` objects, decoded from
    their log bytes and applied (what every node does for every batch, HTTP and Raft aside)."""
    state = _register_state(objects)
    blobs = []
    for b in range(n // size):
        value = f"{b:064d}"
        ops = tuple(Transition(MACHINE, key_name((b * size + j) % objects), "put", {"value": value})
                    for j in range(size))
        blobs.append(encode(Entry(Batch(ops), at_ms=2 + b)))

    return applied_as_a_node(f"register puts in batches of {size}, decoded", state, blobs, size,
                             read=lambda blob, i: decode(blob, objects + 1 + i))


def window_appends(n: int, size: int = 100, capacity: int = 100_000, repeat: int = 50) -> CoreResult:
    """What every node does with an applied entry's events when nobody watches: the event
    window (cluster/events/window.py) keeps them, full, so each entry pushes out the oldest.
    The events are the engine's own, from applying the batch workload's entries (untimed),
    appended `repeat` times over (one pass is too short to time)."""
    objects = max(size, min(10_000, n))
    state = _register_state(objects)
    produced = []
    for b in range(max(1, n // size)):
        ops = tuple(Transition(MACHINE, key_name((b * size + j) % objects), "put", {"value": f"{b:064d}"})
                    for j in range(size))
        produced.append(apply(state, Entry(Batch(ops), at_ms=2, index=objects + 2 + b)).events)
    window = EventWindow(capacity)
    first = objects + 2 + len(produced)
    while len(window) + size <= capacity:  # full before the timed appends
        window.append_entry(first, produced[0])
        first += 1

    def run() -> None:
        index = first
        for _ in range(repeat):
            for events in produced:
                window.append_entry(index, events)
                index += 1

    return timed(f"events kept by the window, {size} an entry", repeat * sum(map(len, produced)), run)


def run_core(scale: float = 1.0) -> list[CoreResult]:
    n = max(1_000, int(200_000 * scale))
    return [guard_evaluations(n * 2), transitions(n), batched_transitions(n), register_batches(n),
            window_appends(n)]


def main(scale: float = 1.0) -> int:
    print("fsmcluster core benchmark (one core, no Raft, no HTTP)")
    for result in run_core(scale):
        print(result.line())
    return 0
