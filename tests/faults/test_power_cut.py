"""SPEC 1 through a power cut of the whole cluster: an acknowledged write survives it.

Every node's data dir lives on `powercut_fs` (a FUSE file system that, like
LazyFS, forgets what was not synced when the power goes). Clients write under
load; all three nodes are killed at once and every unsynced write is dropped;
the nodes restart on what survived. With `--fsync always` (the default) every
write acknowledged before the cut is still there and the whole history, across
the cut, is linearizable. With `--fsync off` acknowledged writes are lost: the
control, which shows the test can fail.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster
from tests.faults.clients import Client, Figures, high_lane
from tests.faults.linearizability import check
from tests.faults.models import detail_of, status_of
from tests.faults.powercut import Disk, cut_power, mounted, place_data_dirs
from tests.faults.workloads import RegisterWorkload, final_reads

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(240)]
LOAD_SECONDS = 6.0  # of writes before the cut
AFTER_SECONDS = 4.0  # of writes after the restart (fsync always)
CLIENTS = 6
SYNC_DELAY = 0.005  # each fsync takes 5 ms, like a disk: more data is in flight when the power goes


class Run:
    """Clients writing a RegisterWorkload until stopped; sleeps while the power is off."""

    def __init__(self, cluster: Cluster, workload: RegisterWorkload, seed: int) -> None:
        self.cluster, self.workload, self.figures = cluster, workload, Figures()
        self.stop, self.dark = threading.Event(), threading.Event()
        setup = Client("setup", cluster.urls, 0, self.figures)
        workload.setup(setup)
        setup.close()
        self.threads = [threading.Thread(target=self._loop, args=(i, seed), daemon=True) for i in range(CLIENTS)]
        for thread in self.threads:
            thread.start()

    def _loop(self, index: int, seed: int) -> None:
        client = Client(f"c{index}", self.cluster.urls, index, self.figures, high=high_lane(index))
        rng = random.Random(seed * 1000 + index)
        try:
            while not self.stop.is_set():
                if self.dark.is_set():
                    time.sleep(0.1)
                    continue
                self.workload.step(client, rng)
        finally:
            client.close()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def acknowledged_before(workload: RegisterWorkload, moment: float) -> dict[str, int]:
    """Per key, the highest version a write acknowledged before `moment` produced."""
    highest: dict[str, int] = {}
    for op in workload.history.operations():
        if op.kind == "transition" and op.complete is not None and op.complete < moment \
                and status_of(op.output) == "ok":
            highest[op.key] = max(highest.get(op.key, 0), detail_of(op.output))
    return highest


def versions_now(cluster: Cluster, workload: RegisterWorkload) -> dict[str, int]:
    """Each key's version as a linearizable read on the leader sees it (0: the object is gone)."""
    http = cluster.http(cluster.leader_index())
    out = {}
    for key in workload.keys:
        for _ in range(40):
            response = http.get(workload.path(key))
            if response.status != 503:
                break
            time.sleep(0.25)
        out[key] = response.json["version"] if response.status == 200 else 0
    return out


def power_cut_run(tmp_path: Path, disk: Disk, fsync: str, seed: int,
                  node_args: tuple[str, ...] = (), n: int = 3) -> tuple[dict[str, int], dict[str, int], Run]:
    cluster = Cluster(tmp_path / "cluster", n=n, extra_args=("--fsync", fsync, *node_args))
    place_data_dirs(cluster, disk)
    workload = RegisterWorkload(keys=4, seed=seed)
    try:
        cluster.start()
        run = Run(cluster, workload, seed)
        time.sleep(LOAD_SECONDS)
        cut_at = time.monotonic()
        cut_power(cluster, disk)  # while the clients write
        run.dark.set()  # (no spinning on refused connections while the nodes are down)
        acknowledged = acknowledged_before(workload, cut_at)
        cluster.start()
        after = versions_now(cluster, workload)  # before anyone writes again
        if fsync == "always":
            run.dark.clear()
            time.sleep(AFTER_SECONDS)
        run.finish()
        if fsync == "always":
            final_reads(cluster, workload, run.figures)
        return acknowledged, after, run
    finally:
        cluster.stop()


def lost_writes(acknowledged: dict[str, int], after: dict[str, int]) -> list[str]:
    return [f"{key}: version {acked} was acknowledged before the cut, {after[key]} after it"
            for key, acked in sorted(acknowledged.items()) if after[key] < acked]


def test_acknowledged_writes_survive_a_power_cut(tmp_path: Path) -> None:
    with mounted(tmp_path / "disk", SYNC_DELAY) as disk:
        # a snapshot every 1000 entries: dumps, their renames and journal compactions happen under load too
        acknowledged, after, run = power_cut_run(tmp_path, disk, "always", seed=12,
                                                 node_args=("--log-compaction-entries", "1000",
                                                            "--log-compaction-bytes", "0",
                                                            "--leader-compaction-factor", "1"))
        print(run.figures.summary(), "| acknowledged before the cut:", acknowledged, "| after:", after)
        print(next(line for line in disk.log().splitlines() if "power cut:" in line))
    assert sum(acknowledged.values()) > 2 * len(acknowledged), "too few writes before the cut to prove anything"
    assert not lost_writes(acknowledged, after)
    result = check(run.workload.history.operations(), run.workload.model())
    assert result.ok, result.explanation
    assert not run.figures.anomalies and not run.figures.unexpected, (run.figures.anomalies, run.figures.unexpected)
    assert run.figures.outcomes["write-ok"] > 0


def test_a_leader_counts_only_what_it_synced(tmp_path: Path) -> None:
    """A one-member cluster: the leader alone makes the majority, so each write it acknowledges
    must be on its disk. Its syncs run beside the Raft thread (pipelined): counting an entry
    while the sync that covers it is still in flight would lose acknowledged writes here. A slow
    disk (50 ms a sync) keeps such a sync in flight most of the time, so the one cut finds it."""
    with mounted(tmp_path / "disk", 10 * SYNC_DELAY) as disk:
        acknowledged, after, run = power_cut_run(tmp_path, disk, "always", seed=14, n=1)
        print(run.figures.summary(), "| acknowledged before the cut:", acknowledged, "| after:", after)
    assert sum(acknowledged.values()) > 2 * len(acknowledged), "too few writes before the cut to prove anything"
    assert not lost_writes(acknowledged, after)
    result = check(run.workload.history.operations(), run.workload.model())
    assert result.ok, result.explanation


def test_control_fsync_off_loses_acknowledged_writes(tmp_path: Path) -> None:
    """Without syncs the journal is still in the (simulated) page cache when the power goes."""
    with mounted(tmp_path / "disk", SYNC_DELAY) as disk:
        acknowledged, after, run = power_cut_run(tmp_path, disk, "off", seed=13)
        print(run.figures.summary(), "| acknowledged before the cut:", acknowledged, "| after:", after)
        print(next(line for line in disk.log().splitlines() if "power cut:" in line))
    assert lost_writes(acknowledged, after), "fsync off lost nothing: the power cut is not faithful"
