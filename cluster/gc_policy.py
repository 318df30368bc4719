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
splice). A loaded snapshot is frozen as soon as it is decoded. Each pause is
therefore bounded by one interval's allocations, not by the size of the state.
The price: a reference cycle that still involves a frozen object is never
collected; the state has none, and the event loop's short-lived cycles are
collected within the interval they were made in.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger("fsmcluster.gc")

FREEZE_EVERY = 1.0  # seconds
SLOW_PAUSE = 0.1  # seconds: a collection this long is logged


def collect_and_freeze() -> float:
    """Collect the unfrozen objects, freeze the survivors; returns the pause in seconds."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    return time.perf_counter() - started


def freeze_loaded_state() -> None:
    """After a snapshot load: everything it allocated is live state, with no garbage to find."""
    gc.freeze()


async def freeze_periodically(interval: float = FREEZE_EVERY) -> None:
    while True:
        await asyncio.sleep(interval)
        pause = collect_and_freeze()
        if pause > SLOW_PAUSE:
            log.info("collecting %d s of allocations paused the node for %.2f s", interval, pause)
