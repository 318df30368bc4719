"""The nodes of a cluster compact their logs at points of their own (cluster/raft/compaction.py).

With one threshold for all, the three nodes dumped their state at the same
entry, together: under load every dump took the cores from all three at once.
Each node now draws its next threshold between the configured one and twice
it. Sampled while writes go on, the index the last dump of each node covers
must differ from node to node by more than the few entries that a dump in
progress lets through.
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
    with Cluster(tmp_path, n=3, extra_args=("--log-compaction-entries", str(THRESHOLD))) as cluster:
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
