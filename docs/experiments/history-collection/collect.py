"""What the periodic young collection costs per applied register put, by history length.

Kept so that its figure in docs/BENCHMARKS.md ("Round seventeen") can be reproduced:
`../../../.venv/bin/python collect.py 10 1 100` from this folder. For each history length:
10,000 register objects with full histories, then 40 times: 2,800 puts (a tenth of a
second of a node under batches) in batches of 100, then the node's collection
(`gc.collect(1)`, `gc.freeze()`), timed in process CPU.
"""

from __future__ import annotations

import gc
import sys
import time

from cluster.bench.workloads import REGISTER_MACHINE, key_name
from cluster.core.engine import apply
from cluster.core.entries import Batch, Entry, PutMachine, Transition
from cluster.core.state import ClusterState
from cluster.gc_policy import raise_young_threshold

OBJECTS = 10_000
PER_COLLECTION = 2_800
ROUNDS = 40


def machine(history: int) -> str:
    """The benchmark's `register` machine, keeping `history` events an object."""
    return REGISTER_MACHINE.replace("history: 10\n", f"history: {history}\n")


def run(history: int) -> str:
    state = ClusterState()
    apply(state, Entry(PutMachine("register", machine(history)), at_ms=1))
    for i in range(OBJECTS):
        apply(state, Entry(Transition("register", key_name(i), "create"), at_ms=1, index=i + 2))
    raise_young_threshold()
    index, put = OBJECTS + 2, 0

    def puts(n: int) -> None:
        nonlocal index, put
        for _ in range(n // 100):
            ops = tuple(Transition("register", key_name((put + j) % OBJECTS), "put", {"value": f"{index:064d}"})
                        for j in range(100))
            put += 100
            apply(state, Entry(Batch(ops), at_ms=2, index=index))
            index += 1

    puts(OBJECTS * 12)  # every history full
    gc.collect()
    gc.freeze()
    pauses, applying = [], 0.0
    for _ in range(ROUNDS):
        t0 = time.process_time()
        puts(PER_COLLECTION)
        t1 = time.process_time()
        gc.collect(1)
        gc.freeze()
        pauses.append(time.process_time() - t1)
        applying += t1 - t0
    pauses.sort()
    n = ROUNDS * PER_COLLECTION
    return (f"history {history:>3}: collection median {1e3 * pauses[len(pauses) // 2]:.2f} ms per "
            f"{PER_COLLECTION} puts, {1e6 * sum(pauses) / n:.3f} us a put; apply {1e6 * applying / n:.2f} us a put")


if __name__ == "__main__":
    for length in map(int, sys.argv[1:] or ["10", "1", "100"]):
        print(run(length))
