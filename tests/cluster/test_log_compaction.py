"""When the nodes of a cluster compact their logs (cluster/raft/compaction.py).

- At points of their own: with one threshold for all, the three nodes dumped
  their state at the same entry, together, and under load every dump took the
  cores from all three at once. Each node now draws its next threshold between
  the configured one and twice it. Sampled while writes go on, the index the
  last dump of each node covers must differ from node to node by more than the
  few entries that a dump in progress lets through.
- Not for a log much smaller than the state: small writes to a large state
  wait until the log holds as many bytes as the last dump.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.harness import Cluster
from tests.faults.workloads import REGISTER_YAML

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]
THRESHOLD = 40  # --log-compaction-entries
WRITES = 600
SAMPLE_EVERY = 40
SPREAD = THRESHOLD // 2  # entries between the nodes' last dumps, at least once


def test_nodes_compact_their_logs_at_points_of_their_own(tmp_path: Path) -> None:
    args = ("--log-compaction-entries", str(THRESHOLD), "--log-compaction-bytes", "0")  # entries alone
    with Cluster(tmp_path, n=3, extra_args=args) as cluster:
        leader = cluster.http(cluster.leader_index())
        assert leader.put("/v1/machines/register", body=REGISTER_YAML,
                          content_type="application/yaml").status in (200, 201)
        samples: list[list[int]] = []
        for n in range(WRITES):
            r = leader.post(f"/v1/machines/register/objects/r-{n}/transitions/create", json={})
            assert r.status == 201, r
            if n % SAMPLE_EVERY == SAMPLE_EVERY - 1:
                samples.append([cluster.http(i).get("/v1/cluster").json["snapshot"]["last_index"] or 0
                                for i in range(cluster.n)])
        spreads = [max(indexes) - min(indexes) for indexes in samples]
        print(f"last dumped index per node: {samples}; spreads {spreads}")
        assert all(min(indexes) > 0 for indexes in samples[2:]), f"a node never compacted: {samples}"
        assert max(spreads) >= SPREAD, f"the nodes dumped at the same entries: {samples}"


def test_small_writes_to_a_large_state_do_not_rewrite_it_every_few_entries(tmp_path: Path) -> None:
    with Cluster(tmp_path, n=3, extra_args=("--log-compaction-entries", str(THRESHOLD))) as cluster:
        leader = cluster.http(cluster.leader_index())
        assert leader.put("/v1/machines/register", body=REGISTER_YAML,
                          content_type="application/yaml").status in (200, 201)
        for n in range(40):  # ~2 MB of state
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

        # big writes: the log outgrows the dump (~4 MB: the pads, in the objects and their
        # histories) within twice its size, and every node compacts it
        written = 0
        while any(last_dump(cluster, i) == dumped[i] for i in range(cluster.n)):
            assert written < 12 * 1024 * 1024, "the log outgrew the dump three times and was not compacted"
            r = leader.post(f"/v1/machines/register/objects/big-{written % 40}/transitions/write",
                            json={"data": {"pad": "y" * 50_000}})
            assert r.status == 200, r
            written += 50_000


def last_dump(cluster: Cluster, i: int) -> int:
    return int(cluster.http(i).get("/v1/cluster").json["snapshot"]["last_index"] or 0)
