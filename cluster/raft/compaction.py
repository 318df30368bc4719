"""When a node compacts its log: at a point of its own, not when every node does.

pysyncobj compacts a node's log once it holds `logCompactionMinEntries`
entries, or `logCompactionMinTime` seconds after its last dump. The nodes of a
cluster append and apply the same entries within milliseconds of each other, so
with one threshold all of them dumped their state at the same moment: under a
bulk load on a 2-core box, three 27 MB dumps (~0.15 CPU s each) at once, while
the leader and both followers were needed to commit (docs/BENCHMARKS.md, round
eleven: high-lane p99 53 -> 68-72 ms in the points a dump fell in).

As hashicorp/raft staggers its snapshots ("between this value and 2x this
value"), each node draws its own thresholds, at start and every time a dump
begins, uniformly between the configured values and twice them. The nodes then
dump at different moments, so a commit has a quorum that is not dumping, and
one node's dump has the box's cores to itself. The configured values stay the
floor: a log is never compacted sooner than before, and holds at most twice as
many entries (or waits at most twice as long) before it is.
"""

from __future__ import annotations

import random
from typing import Any


class CompactionStagger:
    """Draws a node's next compaction thresholds into pysyncobj's conf."""

    def __init__(self, entries: int, seconds: float, rng: random.Random | None = None) -> None:
        self.entries = entries
        self.seconds = seconds
        self._rng = rng or random.Random()

    def draw(self) -> tuple[int, float]:
        """(entries, seconds) of the next dump: the configured values times one factor in [1, 2)."""
        factor = 1.0 + self._rng.random()
        return int(self.entries * factor), self.seconds * factor

    def redraw(self, conf: Any) -> None:
        """Set the thresholds pysyncobj reads on every tick (a `SyncObjConf`)."""
        conf.logCompactionMinEntries, conf.logCompactionMinTime = self.draw()
