"""When a node compacts its log (cluster/raft/compaction.py): not before its log holds the bytes of its last dump."""

from __future__ import annotations

from cluster.raft.compaction import ENTRIES_CAP, CompactionPolicy

MIB = 1024 * 1024


def test_a_small_log_waits_for_the_bytes_of_the_last_dump() -> None:
    p = CompactionPolicy(5000, 64 * MIB)
    assert p.min_entries(1 * MIB, 30 * MIB) == 5000 * ENTRIES_CAP  # 1 MB of log, a 30 MB dump
    assert p.min_entries(30 * MIB, 30 * MIB) == 5000  # as many bytes: by entries again
    assert p.min_entries(1 * MIB, None) == 5000  # no dump yet: by entries


def test_the_byte_rule_waits_for_at_most_max_bytes_and_can_be_turned_off() -> None:
    p = CompactionPolicy(5000, 64 * MIB)
    huge = 400 * MIB  # a million objects' dump
    assert p.min_entries(63 * MIB, huge) == 5000 * ENTRIES_CAP
    assert p.min_entries(64 * MIB, huge) == 5000
    assert CompactionPolicy(5000, 0).min_entries(1, huge) == 5000
