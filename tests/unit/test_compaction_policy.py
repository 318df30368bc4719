"""When a node compacts its log (cluster/raft/compaction.py): its own draw, and the log's bytes."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

from cluster.raft.compaction import ENTRIES_CAP, CompactionPolicy

MIB = 1024 * 1024


def policy(max_bytes: int = 64 * MIB, seed: int = 1) -> tuple[CompactionPolicy, SimpleNamespace]:
    p = CompactionPolicy(5000, 300.0, max_bytes, rng=random.Random(seed))
    conf = SimpleNamespace()
    p.redraw(conf)
    return p, conf


def test_each_draw_lies_between_the_configured_thresholds_and_twice_them() -> None:
    p, conf = policy()
    draws = []
    for _ in range(200):
        p.redraw(conf)
        assert 5000 <= conf.logCompactionMinEntries < 10000
        assert 300.0 <= conf.logCompactionMinTime < 600.0
        draws.append(conf.logCompactionMinEntries)
    assert max(draws) - min(draws) > 2500  # spread over the range, not one point


def test_nodes_draw_apart() -> None:
    floors = {policy(seed=seed)[0].floor() for seed in range(3)}
    assert len(floors) == 3


def test_a_small_log_waits_for_the_bytes_of_the_last_dump() -> None:
    p, _ = policy()
    floor = p.floor()
    assert p.min_entries(1 * MIB, 30 * MIB) == floor * ENTRIES_CAP  # 1 MB of log, a 30 MB dump
    assert p.min_entries(math.ceil(30 * MIB * p.factor), 30 * MIB) == floor  # as many bytes: due
    assert p.min_entries(1 * MIB, None) == floor  # no dump yet: by entries


def test_the_byte_rule_waits_for_at_most_max_bytes_and_can_be_turned_off() -> None:
    p, _ = policy(max_bytes=64 * MIB)
    floor = p.floor()
    huge = 400 * MIB  # a million objects' dump
    assert p.min_entries(63 * MIB, huge) == floor * ENTRIES_CAP
    assert p.min_entries(math.ceil(64 * MIB * p.factor), huge) == floor
    off, _ = policy(max_bytes=0)
    assert off.min_entries(1, huge) == off.floor()
