"""The bench's account of the whole machine during a point (`machine_pct` in its JSON):
/proc/stat's fields between two samples, in % of one core, adding up to every core."""

from __future__ import annotations

import os

from cluster.bench.loadgen import MACHINE_FIELDS, LoadResult, machine_cpu, machine_split


def test_the_split_names_each_field_and_adds_up_to_every_core() -> None:
    cores = os.cpu_count() or 1
    before = (100, 0, 20, 60, 10, 0, 10, 0)
    after = (160, 0, 30, 80, 20, 0, 10, 0)  # 100 jiffies: 60 user, 10 system, 20 idle, 10 iowait
    split = machine_split(before, after)
    assert tuple(split) == MACHINE_FIELDS
    assert split["user"] == 60.0 * cores and split["idle"] == 20.0 * cores
    assert split["iowait"] == 10.0 * cores and split["system"] == 10.0 * cores
    assert sum(split.values()) == 100.0 * cores
    # busy: everything but idle and disk waits, from the split itself
    assert LoadResult(16, 1.0, machine_pct=split).machine_busy_pct == 70.0 * cores


def test_the_machine_sample_reads_one_count_per_field_from_proc_stat() -> None:
    sample = machine_cpu()  # a machine that has run has spent time; an unread file gives zeros
    assert len(sample) == len(MACHINE_FIELDS)
    assert sample[MACHINE_FIELDS.index("user")] > 0 and sample[MACHINE_FIELDS.index("idle")] > 0
