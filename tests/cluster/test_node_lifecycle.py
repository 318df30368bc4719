"""Node lifecycle on fresh clusters: restart recovery (journal and snapshot), no quorum → 503,
unknown outcome → 504 and an idempotent retry, leader-proposed timer ticks."""

from __future__ import annotations

import time
from collections.abc import Callable

from .conftest import lock_source
from .harness import Cluster

M = "/v1/machines/lc"
TIMED_YAML = """\
states:
  open: {}
  held:
    timeout: {after: 1s, transition: expire}
transitions:
  create: {from: null, to: open}
  hold: {from: open, to: held}
  expire: {from: held, to: open}
"""


def put_lock(cluster: Cluster) -> None:
    r = cluster.http(0).put(M, body=lock_source(), content_type="application/yaml")
    assert r.status == 201, r


def test_all_nodes_restart_from_journal_and_snapshot(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(3)
    put_lock(cluster)
    http = cluster.http(1)
    for i in range(5):
        assert http.post(f"{M}/objects/r-{i}/transitions/create").status == 201
    snap = cluster.http(0).post("/v1/cluster/snapshot")
    assert snap.status == 200 and snap.json["ok"], snap
    assert (cluster.nodes[0].data_dir / "raft.snapshot").exists()
    assert (cluster.nodes[0].data_dir / "raft.journal").exists()
    # entries after the snapshot live only in the journal
    assert http.post(f"{M}/objects/r-0/transitions/acquire", json={"data": {"owner": "w"}}).status == 200
    for i in range(3):
        cluster.stop_node(i)
    for i in range(3):
        cluster.spawn(i)
    cluster.wait_ready()
    for i in range(3):
        listing = cluster.http(i).get(f"{M}/objects?limit=100")
        assert listing.status == 200, listing
        assert [o["id"] for o in listing.json["objects"]] == [f"r-{i}" for i in range(5)]
        obj = cluster.http(i).get(f"{M}/objects/r-0").json
        assert (obj["state"], obj["version"]) == ("held", 2)


def test_no_quorum_is_503_and_stale_reads_still_answer(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(3)
    put_lock(cluster)
    assert cluster.http(0).post(f"{M}/objects/q-1/transitions/create").status == 201
    leader = cluster.leader_index()
    survivor = (leader + 1) % 3
    for i in range(3):
        if i != survivor:
            cluster.kill(i)
    http = cluster.http(survivor)
    write = http.post(f"{M}/objects/q-1/transitions/acquire?timeout=3s", json={"data": {"owner": "w"}})
    assert write.status in (503, 504), write  # 504 only if a leader seemed alive when it was sent
    assert write.error_code in ("unavailable", "timeout")
    if write.status == 503:
        assert write.headers["Retry-After"] == "1"
    read = http.get(f"{M}/objects/q-1")
    assert (read.status, read.error_code) == (503, "unavailable"), read
    assert read.headers["Retry-After"] == "1"
    stale = http.get(f"{M}/objects/q-1?consistency=stale")
    assert stale.status == 200 and stale.json["version"] == 1
    assert "X-Raft-Applied-Index" in stale.headers
    deadline = time.monotonic() + 30
    while http.get("/readyz").status != 503:
        assert time.monotonic() < deadline, "readyz stayed 200 without a quorum"
        time.sleep(0.2)


def test_unknown_outcome_is_504_and_the_retry_applies_once(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(3)
    put_lock(cluster)
    assert cluster.http(0).post(f"{M}/objects/u-1/transitions/create").status == 201
    leader = cluster.leader_index()
    follower = (leader + 1) % 3
    key = {"Idempotency-Key": "acquire-u-1"}
    body = {"data": {"owner": "w"}}
    cluster.pause(leader)
    try:
        r = cluster.http(follower).post(f"{M}/objects/u-1/transitions/acquire?timeout=1s", json=body, headers=key)
        assert r.status in (503, 504), r
    finally:
        cluster.resume(leader)
    cluster.wait_ready()
    deadline = time.monotonic() + 30
    while True:
        retry = cluster.http(follower).post(f"{M}/objects/u-1/transitions/acquire", json=body, headers=key)
        if retry.status == 200:
            break
        assert retry.status in (503, 504), retry
        assert time.monotonic() < deadline, retry
        time.sleep(0.3)
    assert retry.json["object"]["version"] == 2
    while True:  # the paused node may still be learning who leads now: 503, retry
        r = cluster.http(leader).get(f"{M}/objects/u-1")
        if r.status not in (503, 504) or time.monotonic() >= deadline:
            break
        time.sleep(0.3)
    assert r.status == 200, r
    assert (r.json["state"], r.json["version"]) == ("held", 2)


def test_state_timeouts_fire_through_leader_ticks(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(3)
    assert cluster.http(0).put("/v1/machines/timed", body=TIMED_YAML, content_type="application/yaml").status == 201
    assert cluster.http(1).post("/v1/machines/timed/objects/t/transitions/create").status == 201
    held = cluster.http(2).post("/v1/machines/timed/objects/t/transitions/hold")
    assert held.status == 200 and held.json["object"]["expires_at"] is not None, held
    deadline = time.monotonic() + 20
    while True:
        obj = cluster.http(0).get("/v1/machines/timed/objects/t").json
        if obj["state"] == "open":
            break
        assert time.monotonic() < deadline, obj
        time.sleep(0.2)
    assert obj["version"] == 3
    assert obj["previous_state"] == "held"
