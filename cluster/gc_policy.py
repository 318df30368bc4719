"""The node's cyclic-GC policy: a big state must not mean long stop-the-world pauses.

CPython's full collection walks every tracked container. With a million objects
in the state (their data dicts, history events) that takes a second or more,
during which neither the Raft thread nor the HTTP API runs, and a leader that
misses its heartbeats for longer than the election timeout loses its
leadership. The state holds no reference cycles (records are immutable and
refcounting frees them), so the collector has nothing to find in it.

So, every `FREEZE_EVERY` seconds, the node collects what was allocated since
the last time (only that: frozen objects are never walked again) and then moves
all survivors to the permanent generation (`gc.freeze()`, which costs a list
splice). A loaded snapshot is frozen as soon as it is decoded (`codec.loads`). Each pause is
therefore bounded by one interval's allocations, not by the size of the state.
The interval is short because the pause is what every request in flight waits
for: a second of batches (~15,000 transitions, a few hundred thousand containers)
took 24-30 ms to walk, up to 90 ms, once a second on every node, and a request that
crosses two nodes met one of those pauses often enough to set its p99. A tenth of a
second walks a tenth as much (2.5-2.9 ms on average); the total is the same.
Survivors being frozen each time, the oldest generation holds no unfrozen object
unless automatic collections moved some there, so the collection is normally of the two
young generations only (`codec.collect_unless_paused`): a full one also empties CPython's
free lists, 0.5-1 ms more each time.
Each pause is observed in `PAUSES` (`fsm_gc_pause_seconds` on /metrics).
Between two freezes the automatic young collections would run every 700 new
containers (CPython's default): under a load of batches that is hundreds a
second, each walking the in-flight requests and entries (~10 % of a node's CPU,
measured). The periodic collection already finds what they would find, so the
young generation's threshold is raised to `YOUNG_THRESHOLD` while the policy runs:
a burst of cyclic garbage is still bounded by that many containers.
The price: a reference cycle that still involves a frozen object is never
collected; the state has none, and the event loop's short-lived cycles are
collected within the interval they were made in.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

from cluster.core import codec
from cluster.raft.sync_stats import Histogram

log = logging.getLogger("fsmcluster.gc")

FREEZE_EVERY = 0.1  # seconds
SLOW_PAUSE = 0.1  # seconds: a collection this long is logged
YOUNG_THRESHOLD = 20_000  # new containers between automatic young collections (default 700)
PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
PAUSES = Histogram(PAUSE_BUCKETS)  # this process's periodic collections, in seconds


def collect_and_freeze() -> float:
    """Collect the unfrozen objects, freeze the survivors; returns the pause in seconds.

    Not while a snapshot is being decoded on another thread
    (`codec.gc_paused`): `gc.collect()`, which ignores `gc.disable()`, would walk
    every container it has built so far (5-13 s, holding the GIL, in the middle
    of loading a 1M-object dump); that pause cannot begin while this collects."""
    started = time.perf_counter()
    if not codec.collect_unless_paused():
        return 0.0
    return time.perf_counter() - started


def raise_young_threshold() -> None:
    """Fewer automatic young collections: the periodic collection does their work."""
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


async def freeze_periodically(interval: float = FREEZE_EVERY) -> None:
    raise_young_threshold()
    while True:
        await asyncio.sleep(interval)
        pause = collect_and_freeze()
        PAUSES.observe(pause)
        if pause > SLOW_PAUSE:
            log.info("collecting %.1f s of allocations paused the node for %.2f s", interval, pause)
