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


def test_a_leader_waits_for_factor_times_the_log_entries_and_bytes_alike() -> None:
    p = CompactionPolicy(5000, 64 * MIB, leader_factor=4)
    assert p.min_entries(30 * MIB, 30 * MIB) == 5000  # a follower: as before
    assert p.min_entries(30 * MIB, 30 * MIB, leading=True) == 5000 * ENTRIES_CAP  # 4 x 30 MB not yet
    assert p.min_entries(120 * MIB, 30 * MIB, leading=True) == 20_000  # the bytes: then 4 x entries
    assert p.min_entries(1 * MIB, None, leading=True) == 20_000  # no dump yet: 4 x entries
    assert p.min_entries(256 * MIB, 400 * MIB, leading=True) == 20_000  # at most 4 x max_bytes
    assert CompactionPolicy(5000, 0, 4).min_entries(1, None, leading=True) == 20_000  # bytes off
    assert CompactionPolicy(5000, 0, 40).min_entries(1, None, leading=True) == 5000 * ENTRIES_CAP
    assert CompactionPolicy(5000, 64 * MIB, 1).min_entries(30 * MIB, 30 * MIB, leading=True) == 5000
