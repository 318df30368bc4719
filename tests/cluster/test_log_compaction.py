"""When the nodes of a cluster compact their logs (cluster/raft/compaction.py): not for a log
much smaller than the state. Small writes to a large state wait until the log holds as many
bytes as the last dump; then the followers compact, and the leader once its log holds
`--leader-compaction-factor` times that, so that its dump does not fall in theirs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.harness import Cluster
from tests.faults.workloads import REGISTER_YAML

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]
THRESHOLD = 40  # --log-compaction-entries
FACTOR = 2  # --leader-compaction-factor


def test_small_writes_to_a_large_state_do_not_rewrite_it_every_few_entries(tmp_path: Path) -> None:
    with Cluster(tmp_path, n=3, extra_args=("--log-compaction-entries", str(THRESHOLD),
                                             "--leader-compaction-factor", str(FACTOR))) as cluster:
        leading = cluster.leader_index()
        leader = cluster.http(leading)
        followers = [i for i in range(cluster.n) if i != leading]
        assert leader.put("/v1/machines/register", body=REGISTER_YAML,
                          content_type="application/yaml").status in (200, 201)
        for n in range(40):  # a ~4 MB dump: the pads, in the objects and their histories
            r = leader.post(f"/v1/machines/register/objects/big-{n}/transitions/create",
                            json={"data": {"pad": "x" * 50_000}})
            assert r.status == 201, r
        for i in range(cluster.n):  # every node holds a dump of it
            assert cluster.http(i).post("/v1/cluster/snapshot?timeout=20").json["ok"]
        dumped = [last_dump(cluster, i) for i in range(cluster.n)]

        for n in range(8 * THRESHOLD):  # 320 small entries: ~0.1 MB of log
            r = leader.post(f"/v1/machines/register/objects/small-{n}/transitions/create", json={})
            assert r.status == 201, r
        after_small = [last_dump(cluster, i) for i in range(cluster.n)]
        assert after_small == dumped, f"a node re-dumped its state for a small log: {dumped} -> {after_small}"

        # big writes: once the log holds the dump's ~4 MB, the followers compact it (well before
        # it holds twice that); the leader not before it holds FACTOR times that, and then does
        writes = 0

        def write_big() -> None:
            nonlocal writes
            r = leader.post(f"/v1/machines/register/objects/big-{writes % 40}/transitions/write",
                            json={"data": {"pad": "y" * 50_000}})
            assert r.status == 200, r
            writes += 1

        while any(last_dump(cluster, i) == dumped[i] for i in followers):
            assert writes * 50_000 < 8_000_000, "the log outgrew the dump twice and was not compacted"
            write_big()
        assert last_dump(cluster, leading) == dumped[leading], "the leader compacted with its followers"
        while last_dump(cluster, leading) == dumped[leading]:
            assert writes * 50_000 < (FACTOR + 1) * 4_000_000, "the leader's log outgrew its wait"
            write_big()
        assert writes * 50_000 >= FACTOR * 3_500_000, f"the leader compacted after {writes} writes"
        assert cluster.leader_index() == leading


def last_dump(cluster: Cluster, i: int) -> int:
    return int(cluster.http(i).get("/v1/cluster").json["snapshot"]["last_index"] or 0)
