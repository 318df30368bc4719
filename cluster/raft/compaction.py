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

A leader waits for `--leader-compaction-factor` (4) times as much log, entries and
bytes alike (never past the entry cap). Every node counts its log from the same
indexes, so the three used to dump their state at the same moment: on one box, three
dump processes and the copy-on-write faults of three forks at once, and the leader,
which every write goes through, slowed most of all. With the leader's dump 4 times
rarer, most dump windows are the followers' alone, and a write needs only one of them:
in alternating pairs with dumps every 1,000 entries, the high lane's p99 fell from
87-108 to 52-69 ms and the batch p99 was lower in every pair, throughput not lower
(docs/BENCHMARKS.md, round sixteen). The price is the leader's log, in memory and on
disk: 4 times a follower's (a log is compacted once it holds both the entries and the
bytes; at the defaults, batch entries of ~18 KB reach 20,000 entries, ~360 MB, where a
follower's reach 5,000, ~90 MB) and 4 times as long to replay if the leader restarts
(the 20-times entry cap bounds both, as for every node). A node that stops leading
compacts at the next tick by the followers' rule.

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

    def __init__(self, entries: int, max_bytes: int, leader_factor: int = 1) -> None:
        self.entries = entries
        self.max_bytes = max_bytes
        self.leader_factor = leader_factor

    def min_entries(self, log_bytes: int, dump_bytes: int | None, leading: bool = False) -> int:
        """What pysyncobj's `logCompactionMinEntries` should be now: past it, the log is compacted.

        `dump_bytes`: the size of this node's last dump (None: it has none); `leading`:
        this node is the leader (it waits `leader_factor` times as long). Decided
        whatever the log's length: pysyncobj compares the log with the value set on
        the tick before, so a value that changed only as the log passed the threshold
        would come one tick late.
        """
        factor = self.leader_factor if leading else 1
        cap = self.entries * ENTRIES_CAP
        if dump_bytes is None or log_bytes >= min(dump_bytes, self.max_bytes) * factor:
            return min(self.entries * factor, cap)
        return cap
