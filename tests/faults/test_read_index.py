"""ReadIndex (cluster/raft/read_index.py): linearizable reads without log entries.

- Reads on every node see a write acknowledged just before by another node, and
  a hundred reads add nothing to the Raft log.
- A leader cut off from the majority (which elects a new leader and moves on)
  must not answer reads from its stale state: it cannot confirm a heartbeat
  round, so every linearizable read it gets is refused with 503, never answered
  with the old value. `--leader-fallback-timeout 60` keeps it believing it leads
  for the whole test, which is the case ReadIndex must get right.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster
from tests.faults.nemesis import Nemesis
from tests.faults.workloads import REGISTER_YAML

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]
OBJ = "/v1/machines/register/objects/r1"


def put(http, value: str, expected: int | None = None):  # type: ignore[no-untyped-def]
    body = {"data": {"value": value}}
    if expected is not None:
        body["expected_version"] = expected
    return http.post(f"{OBJ}/transitions/write", json=body)


def commit_index(cluster: Cluster, i: int) -> int:
    return int(cluster.http(i).get("/v1/cluster").json["commit_index"])


def settled_commit_indexes(cluster: Cluster, quiet: float = 2.0) -> list[int]:
    """The commit indexes once nothing has been written for `quiet` seconds."""
    deadline = time.monotonic() + 30
    seen = [commit_index(cluster, i) for i in range(3)]
    since = time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "the log never went quiet"
        time.sleep(0.2)
        now = [commit_index(cluster, i) for i in range(3)]
        if now != seen:
            seen, since = now, time.monotonic()
    return seen


def test_reads_on_every_node_see_the_last_write_without_log_entries(tmp_path: Path) -> None:
    with Cluster(tmp_path, n=3) as cluster:
        leader = cluster.leader_index()
        http = cluster.http(leader)
        assert http.put("/v1/machines/register", body=REGISTER_YAML,
                        content_type="application/yaml").status in (200, 201)
        assert http.post(f"{OBJ}/transitions/create", json={}).status == 201
        for n in range(10):
            writer = cluster.http((leader + n) % 3)  # through the leader and both followers
            r = put(writer, f"v{n}")
            assert r.status == 200, r
            for i in range(3):  # at once, on every node: the read must include the write
                got = cluster.http(i).get(OBJ)
                assert got.status == 200, got
                assert got.json["data"]["value"] == f"v{n}", (i, got.json)
        before = settled_commit_indexes(cluster)  # members publish themselves through the log
        for n in range(100):
            assert cluster.http(n % 3).get(OBJ).status == 200
        after = [commit_index(cluster, i) for i in range(3)]
        assert max(after) == max(before), f"reads wrote to the log: {before} -> {after}"


def test_a_cut_off_leader_refuses_reads_instead_of_answering_stale(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, n=3, raft_bind=True,
                      extra_args=("--leader-fallback-timeout", "60", "--read-timeout", "1"))
    with Nemesis.around(cluster, seed=7) as nemesis:
        old = nemesis.leader()
        old_http = cluster.http(old)
        assert old_http.put("/v1/machines/register", body=REGISTER_YAML,
                            content_type="application/yaml").status in (200, 201)
        assert old_http.post(f"{OBJ}/transitions/create", json={}).status == 201
        assert put(old_http, "old").status == 200
        nemesis.isolate(old)

        others = [i for i in range(cluster.n) if i != old]
        deadline = time.monotonic() + 30
        while True:  # the majority elects a new leader and writes past the old leader's state
            assert time.monotonic() < deadline, "the majority never accepted the new value"
            r = put(cluster.http(others[0]), "new")
            if r.status == 200:
                break
            time.sleep(0.2)
        status = old_http.get("/v1/cluster").json
        assert status["leader"] == status["node"], "the cut-off leader stepped down: the test proves nothing"

        answers = []
        for _ in range(5):
            r = old_http.get(OBJ)
            answers.append(r.status)
            assert r.status != 200 or r.json["data"]["value"] == "new", (
                f"the cut-off leader answered a linearizable read from stale state: {r.json}")
            assert r.status == 503, r
            assert {k.lower() for k in r.headers} >= {"retry-after"}, r.headers
        stale = old_http.get(f"{OBJ}?consistency=stale")
        assert stale.status == 200 and stale.json["data"]["value"] == "old"  # it really is behind
        nemesis.heal()
        deadline = time.monotonic() + 30
        while old_http.get(OBJ).status != 200:  # healed: it follows and reads again
            assert time.monotonic() < deadline, "the old leader never served reads after healing"
            time.sleep(0.2)
        assert old_http.get(OBJ).json["data"]["value"] == "new"
