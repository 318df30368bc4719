"""SPEC 1 under faults: histories recorded while nodes are killed, paused and partitioned
must be linearizable; a leader cut off in a minority acknowledges no write; after
healing every node holds the same objects.

Each test runs a real 3-node cluster for a bounded time and prints its figures
(operations, faults injected, anomalies); `scripts/soak` runs the same workloads
for longer with a random mix of faults.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster
from tests.faults.nemesis import Nemesis
from tests.faults.workloads import (
    DedupWorkload,
    LockWorkload,
    RegisterWorkload,
    Report,
    Workload,
    run_workload,
)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(240)]
RUN_SECONDS = 25.0


def assert_clean(report: Report) -> None:
    print(report.summary())
    assert report.anomalies == 0, report.failure()
    assert report.result.ok, report.failure()


def run(tmp_path: Path, workload: Workload, kinds: tuple[str, ...], seed: int,
        seconds: float = RUN_SECONDS) -> Report:
    cluster = Cluster(tmp_path, n=3, raft_bind="partition" in " ".join(kinds))
    with Nemesis.around(cluster, seed=seed) as nemesis:
        report = run_workload(cluster, workload, seconds, nemesis, kinds, seed=seed)
        if nemesis.total == 0:
            pytest.fail(f"the nemesis injected nothing:\n{nemesis.timeline()}")
        print(nemesis.timeline())
        assert_converged(cluster, workload)
    return report


def test_register_is_linearizable_under_kill_and_pause(tmp_path: Path) -> None:
    assert_clean(run(tmp_path, RegisterWorkload(keys=4, seed=1), ("kill", "pause"), seed=1))


def test_lock_is_linearizable_under_kill_and_pause(tmp_path: Path) -> None:
    report = run(tmp_path, LockWorkload(keys=3, seed=2), ("kill", "pause"), seed=2)
    assert_clean(report)
    assert report.figures.outcomes["write-ok"] > 0, "no lock operation succeeded"


def test_dedup_accepts_each_message_once_under_partitions_and_kills(tmp_path: Path) -> None:
    report = run(tmp_path, DedupWorkload(seed=3), ("partition", "kill"), seed=3)
    assert_clean(report)
    assert report.figures.outcomes["see-accepted"] > 0, "no message was accepted"


def test_isolated_leader_acknowledges_no_write_and_cluster_converges(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, n=3, raft_bind=True)
    workload = RegisterWorkload(keys=3, seed=4)
    with Nemesis.around(cluster, seed=4) as nemesis:
        partitioned = threading.Event()

        def isolate_leader(_stop: threading.Event, _kinds: object) -> None:
            time.sleep(4.0)
            old = nemesis.leader()
            nemesis.isolate(old)
            try:
                check_isolated_leader(cluster, nemesis, old)
            finally:
                partitioned.set()
                nemesis.heal(wait=False)

        nemesis.run = isolate_leader  # type: ignore[method-assign]
        report = run_workload(cluster, workload, 25.0, nemesis, ("partition-leader",), seed=4)
        assert partitioned.is_set()
        print(nemesis.timeline())
        assert_converged(cluster, workload)
    assert_clean(report)


def check_isolated_leader(cluster: Cluster, nemesis: Nemesis, old: int) -> None:
    """Writes sent to the cut-off leader must not be acknowledged; the majority elects
    a new leader and keeps accepting writes."""
    others = [i for i in range(cluster.n) if i != old]
    http = cluster.http(old)
    answers = []
    deadline = time.monotonic() + 8.0
    n = 0
    while time.monotonic() < deadline:
        r = http.post(f"/v1/machines/register/objects/iso-{n}/transitions/create?timeout=1s", json={})
        answers.append(r.status)
        n += 1
    assert all(s in (503, 504) for s in answers), f"isolated leader answered {answers}"
    new = nemesis.leader(among=others)
    assert new != old
    r = cluster.http(new).post("/v1/machines/register/objects/majority/transitions/create", json={})
    assert r.status == 201, r
    print(f"isolated leader {old}: {len(answers)} writes, none acknowledged; new leader {new}")


def assert_converged(cluster: Cluster, workload: Workload, timeout: float = 60.0) -> None:
    """Every node has applied the same index and holds the same objects (stale reads)."""
    deadline = time.monotonic() + timeout
    while True:
        views = [_view(cluster, i, workload) for i in range(cluster.n)]
        if all(v is not None for v in views) and all(v == views[0] for v in views):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"nodes did not converge: {views}")
        time.sleep(0.5)


def _view(cluster: Cluster, i: int, workload: Workload) -> tuple[object, ...] | None:
    http = cluster.http(i)
    try:
        status = http.get("/v1/cluster").json
        objects = []
        for key in workload.keys:
            r = http.get(f"{workload.path(key)}?consistency=stale")
            objects.append((key, r.status, r.json.get("version"), r.json.get("state"),
                            repr(r.json.get("data"))) if r.status == 200 else (key, r.status))
        again = http.get("/v1/cluster").json
    except OSError:
        return None
    if status["applied_index"] != again["applied_index"]:
        return None  # still applying: look again
    return (status["applied_index"], tuple(objects))


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_soak_ten_minutes(tmp_path: Path) -> None:
    from tests.faults.soak import soak

    assert soak(10.0, 60.0, seed=1, base=tmp_path) == 0
