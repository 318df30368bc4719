"""Counters of the journal's syncs, for /metrics: how many, how long, how many entries each covered.

Written by the Raft thread only; read at scrape time from the asyncio thread.
Each figure is a plain int/float replaced whole, so a scrape may see one sync
counted in one figure and not yet in another, never a torn value.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
ENTRIES_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Histogram:
    """Cumulative-on-read bucket counts (Prometheus `le` semantics), a sum and a count."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        slot = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
        self.counts[slot] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        running, out = 0, []
        for bound, count in zip((*map(str, self.bounds), "+Inf"), list(self.counts), strict=True):
            running += count
            out.append((bound, running))
        return out


class SyncStats:
    def __init__(self) -> None:
        self.syncs = 0
        self.latency = Histogram(LATENCY_BUCKETS)
        self.entries = Histogram(ENTRIES_BUCKETS)

    @contextmanager
    def timed(self, entries: int) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.latency.observe(time.perf_counter() - started)
        self.entries.observe(entries)
        self.syncs += 1
