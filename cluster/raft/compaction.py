"""When a node compacts its log: at a point of its own, and not before the log is worth it.

pysyncobj compacts a node's log once it holds `logCompactionMinEntries`
entries, or `logCompactionMinTime` seconds after its last dump. Two things were
wrong with that alone (docs/BENCHMARKS.md, rounds eleven and twelve):

- **The nodes dumped together.** They append and apply the same entries within
  milliseconds of each other, so with one threshold all of them dumped their
  state at the same entry: under load, three dumps' CPU at once on a small box
  while the leader and both followers were needed to commit. As hashicorp/raft
  staggers its snapshots ("between this value and 2x this value"), each node
  draws a factor in [1, 2), at start and whenever a dump begins, and applies it
  to all its thresholds: the nodes then dump at different moments, and a commit
  has a quorum that is not dumping.
- **A count of entries says nothing about what a dump costs.** 5,000 small
  entries are ~1 MB of log; at a million objects the node re-encoded a 360 MB
  state (seconds of CPU, a second's stall of the node's writes) to drop them.
  So past its entry threshold a node also waits until its log holds as many
  bytes as its last dump (at most `--log-compaction-bytes`, 64 MiB): a dump
  then never writes more than the log it replaces. Twenty times the entry
  threshold (100,000 entries by default, etcd's `--snapshot-count`) ends the
  wait whatever the bytes, which bounds a restart's replay and the log's memory.
  `--log-compaction-bytes 0` turns the byte rule off (a dump every entry
  threshold, as pysyncobj does).

pysyncobj reads `logCompactionMinEntries` on every tick; the member sets it to
`min_entries(...)` on every tick (cluster/raft/member.py), so pysyncobj keeps
deciding when, and how a dump is written does not change.
"""

from __future__ import annotations

import random
from typing import Any

ENTRIES_CAP = 20  # times the entry threshold: a log this long is compacted whatever its bytes


class CompactionPolicy:
    """A node's compaction thresholds; its draw is the node's own (module docstring)."""

    def __init__(self, entries: int, seconds: float, max_bytes: int, rng: random.Random | None = None) -> None:
        self.entries = entries
        self.seconds = seconds
        self.max_bytes = max_bytes
        self._rng = rng or random.Random()
        self.factor = 1.0

    def redraw(self, conf: Any) -> None:
        """A new factor for the next dump; sets pysyncobj's time threshold (a `SyncObjConf`)."""
        self.factor = 1.0 + self._rng.random()
        conf.logCompactionMinTime = self.seconds * self.factor
        conf.logCompactionMinEntries = self.floor()

    def floor(self) -> int:
        return int(self.entries * self.factor)

    def min_entries(self, log_bytes: int, dump_bytes: int | None) -> int:
        """What pysyncobj's `logCompactionMinEntries` should be now: past it, the log is compacted.

        `dump_bytes`: the size of this node's last dump (None: it has none). Decided
        whatever the log's length: pysyncobj compares the log with the value set on
        the tick before, so a value that changed only as the log passed the floor
        would come one tick late.
        """
        floor = self.floor()
        if dump_bytes is None or log_bytes >= min(dump_bytes, self.max_bytes) * self.factor:
            return floor
        return floor * ENTRIES_CAP
