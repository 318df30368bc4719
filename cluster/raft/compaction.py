"""When a node compacts its log: not before the log is worth what a dump costs.

pysyncobj compacts a node's log once it holds `logCompactionMinEntries`
entries, or `logCompactionMinTime` seconds after its last dump. A count of
entries says nothing about what a dump costs: 5,000 small entries are ~1 MB of
log, and at a million objects the node re-encoded a 360 MB state (seconds of
CPU, and the writes of the moment stalled for 0.5-1.8 s) to drop them
(docs/BENCHMARKS.md, round twelve). So past its entry threshold a node also
waits until its log holds as many bytes as its last dump (at most
`--log-compaction-bytes`, 64 MiB): a dump then never writes more than the log it
replaces. Twenty times the entry threshold (100,000 entries by default, etcd's
`--snapshot-count`) ends the wait whatever the bytes, which bounds a restart's
replay and the log's memory. `--log-compaction-bytes 0` turns the byte rule off
(a dump every entry threshold, as pysyncobj does). Entries of batches (~18 KB
each) reach the bytes first, so bulk loads compact as often as before.

pysyncobj reads `logCompactionMinEntries` on every tick; the member sets it to
`min_entries(...)` on every tick (cluster/raft/member.py), so pysyncobj keeps
deciding when, and how a dump is written does not change. Round twelve also
tried staggering the nodes' dumps (each node drawing its thresholds between the
configured values and twice them, as hashicorp/raft does): on one box it made
the high lane's p99 worse, and it was taken out (docs/BENCHMARKS.md).
"""

from __future__ import annotations

ENTRIES_CAP = 20  # times the entry threshold: a log this long is compacted whatever its bytes


class CompactionPolicy:
    """A node's entry threshold for pysyncobj, from its log's bytes and its last dump's."""

    def __init__(self, entries: int, max_bytes: int) -> None:
        self.entries = entries
        self.max_bytes = max_bytes

    def min_entries(self, log_bytes: int, dump_bytes: int | None) -> int:
        """What pysyncobj's `logCompactionMinEntries` should be now: past it, the log is compacted.

        `dump_bytes`: the size of this node's last dump (None: it has none). Decided
        whatever the log's length: pysyncobj compares the log with the value set on
        the tick before, so a value that changed only as the log passed the threshold
        would come one tick late.
        """
        if dump_bytes is None or log_bytes >= min(dump_bytes, self.max_bytes):
            return self.entries
        return self.entries * ENTRIES_CAP
