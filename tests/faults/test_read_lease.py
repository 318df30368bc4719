"""Lease reads (cluster/raft/lease.py) are safe because followers stick to a live leader.

The leader L keeps its link to follower A but loses the one to follower B. B
hears nothing, times out and asks for votes; A still hears from L, so (with
leader stickiness) it ignores them: no other leader can arise while L serves
reads under its lease, and a read on L always includes every acknowledged
write. Without stickiness A votes for B, B accepts writes, and L, still inside
its lease, answers a read with the old value: this test fails.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster, Http
from tests.faults.nemesis import Nemesis
from tests.faults.test_read_index import settled_commit_indexes
from tests.faults.workloads import REGISTER_YAML

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]
OBJ = "/v1/machines/register/objects/r1"
WATCH_SECONDS = 7.0  # B's election timeout is 1-2 s: several elections of B


def metric(http: Http, name: str, labels: str = "") -> float:
    text = http.get("/metrics").text
    found = re.search(rf"^{name}(?:_total)?{re.escape(labels)} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def put(http: Http, value: str) -> int:
    r = http.post(f"{OBJ}/transitions/write?timeout=1", json={"data": {"value": value}})
    return r.status


def test_a_follower_that_hears_the_leader_ignores_votes_so_lease_reads_stay_fresh(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, n=3, raft_bind=True, extra_args=("--read-timeout", "1"))
    with Nemesis.around(cluster, seed=11) as nemesis:
        lead = nemesis.leader()
        a, b = [i for i in range(cluster.n) if i != lead]
        http_l, http_a, http_b = cluster.http(lead), cluster.http(a), cluster.http(b)
        assert http_l.put("/v1/machines/register", body=REGISTER_YAML,
                          content_type="application/yaml").status in (200, 201)
        assert http_l.post(f"{OBJ}/transitions/create", json={}).status == 201
        assert put(http_l, "v0") == 200
        deadline = time.monotonic() + 10
        while http_l.get("/v1/cluster").json["read_lease"]["remaining_ms"] <= 0:
            assert time.monotonic() < deadline, "the leader never got a read lease"
            time.sleep(0.05)
        settled_commit_indexes(cluster)  # members announce their addresses through the log
        term = http_l.get("/v1/cluster").json["term"]
        lease_reads = metric(http_l, "fsm_linearizable_reads", '{path="lease"}')

        assert nemesis.network is not None
        nemesis.network.cut((lead, b))  # L reaches A, A reaches B, L and B are cut apart
        # Nothing is written until B leads: B's log stays as long as A's, so only
        # stickiness keeps A from electing it (Raft's log check would not).
        acknowledged, reads = "v0", 0
        until = time.monotonic() + WATCH_SECONDS
        while time.monotonic() < until:
            status_b = http_b.get("/v1/cluster").json
            if status_b["leader"] is not None and status_b["leader"] == status_b["node"]:
                reads += 1  # B leads: a write through it, then at once a read on L
                if put(http_b, f"b{reads}") == 200:
                    acknowledged = f"b{reads}"
            got = http_l.get(OBJ)
            if got.status == 200:
                seen = got.json["data"]["value"]
                assert seen == acknowledged, (
                    f"the old leader answered a linearizable read with {seen!r} after "
                    f"{acknowledged!r} was acknowledged by the new leader")
            time.sleep(0.02)

        ignored = metric(http_a, "fsm_raft_votes_ignored")
        status_l = http_l.get("/v1/cluster").json
        assert ignored > 0, "B never asked A for a vote: the test proves nothing"
        assert status_l["leader"] == status_l["node"] and status_l["term"] == term, status_l
        assert metric(http_l, "fsm_linearizable_reads", '{path="lease"}') > lease_reads
        assert put(http_a, "through A") == 200  # L and A go on as before
        assert http_l.get(OBJ).json["data"]["value"] == "through A"

        nemesis.heal()  # B rejoins (it deposes L with its higher term) and reads go on
        deadline = time.monotonic() + 30
        while put(http_b, "healed") != 200:
            assert time.monotonic() < deadline, "the cluster never took writes after healing"
            time.sleep(0.2)
        for i in range(cluster.n):
            deadline = time.monotonic() + 30
            while (r := cluster.http(i).get(OBJ)).status != 200:
                assert time.monotonic() < deadline, f"node {i} never served reads after healing"
                time.sleep(0.2)
            assert r.json["data"]["value"] == "healed"
