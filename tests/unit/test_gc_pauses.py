"""The node's periodic collection keeps each GC pause short under a steady load.

Every collection stops every thread of the node, so its length is added to the
latency of every request in flight. A node under batches keeps a few hundred
thousand new containers a second; walking a second of them took 24-90 ms, which
set the high lane's p99. Collected every `FREEZE_EVERY`, each pause walks only
that much. Timed in CPU time of the collecting thread, so a busy machine that
deschedules the test does not count.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from typing import Any

from cluster import gc_policy

RATE = 300_000  # live containers a second, about a node applying 15,000 batched transitions
RUN_SECONDS = 1.5
PAUSE_LIMIT = 0.008  # CPU seconds; walking a whole second of RATE takes 10-20 ms here


def test_periodic_collections_walk_a_short_interval_of_allocations() -> None:
    saved = gc.get_threshold()
    pauses: list[float] = []
    started: list[float] = []

    def timed(phase: str, info: dict[str, Any]) -> None:
        if info["generation"] == 0:  # the periodic collection: generation 1 or 2
            return
        if phase == "start":
            started.append(time.thread_time())
        elif started:
            pauses.append(time.thread_time() - started.pop())

    async def load() -> list[list[int]]:
        kept: list[list[int]] = []
        step = 0.005
        deadline = time.monotonic() + RUN_SECONDS
        while time.monotonic() < deadline:
            kept.extend([i] for i in range(int(RATE * step)))
            await asyncio.sleep(step)
        return kept

    async def run() -> int:
        policy = asyncio.get_running_loop().create_task(gc_policy.freeze_periodically())
        try:
            return len(await load())
        finally:
            policy.cancel()

    gc.collect()
    gc.callbacks.append(timed)
    try:
        kept = asyncio.run(run())
    finally:
        gc.callbacks.remove(timed)
        gc.set_threshold(*saved)
        gc.unfreeze()
    assert kept > RATE // 2  # the load ran
    assert pauses, "no periodic collection ran"
    assert statistics.median(pauses) < PAUSE_LIMIT, (
        f"collections paused the process for {[round(p * 1000, 1) for p in pauses]} ms "
        f"of CPU each (median limit {PAUSE_LIMIT * 1000:.0f} ms)"
    )
