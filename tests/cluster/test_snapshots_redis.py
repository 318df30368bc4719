"""Snapshots in a real Redis (SPEC 6): status, recovery of a wiped follower, the snapshot CLI,
disaster recovery of a whole cluster, and the Redis read model (--redis-projection)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from cluster.storage.base import latest_valid
from cluster.storage.redis import RedisStore, connect
from tests.redis_server import RedisServer

from .conftest import lock_source
from .harness import ROOT, Cluster

M = "/v1/machines/lock"


def redis_cluster(make_cluster: Callable[..., Cluster], server: RedisServer, *extra: str) -> Cluster:
    return make_cluster(3, extra_args=["--redis", server.url, "--cluster-id", "t1", *extra])


def create_objects(cluster: Cluster, ids: list[str], node: int = 0) -> None:
    http = cluster.http(node)
    r = http.put(M, body=lock_source(), content_type="application/yaml")
    assert r.status in (200, 201), r
    for oid in ids:
        assert http.post(f"{M}/objects/{oid}/transitions/create").status == 201


def object_ids(cluster: Cluster, node: int) -> list[str]:
    r = cluster.http(node).get(f"{M}/objects?limit=1000")
    assert r.status == 200, r
    return [o["id"] for o in r.json["objects"]]


def fsm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cluster", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_snapshot_goes_to_redis_and_status_reports_it(
    make_cluster: Callable[..., Cluster], redis_server: RedisServer
) -> None:
    cluster = redis_cluster(make_cluster, redis_server)
    create_objects(cluster, [f"s-{i}" for i in range(10)])
    leader = cluster.leader_index()
    snap = cluster.http(leader).post("/v1/cluster/snapshot")
    assert snap.status == 200 and snap.json["ok"] and snap.json["store"] == "redis", snap
    status = cluster.http(leader).get("/v1/cluster").json["snapshot"]
    assert status["last_index"] == snap.json["last_index"] and status["size"] > 0 and status["ok"]
    found = latest_valid(RedisStore(connect(redis_server.url), "t1"))
    assert found is not None and found[0].index >= snap.json["last_index"]
    metrics = cluster.http(leader).get("/metrics").text
    assert "fsm_snapshot_size_bytes" in metrics and "fsm_snapshot_ok 1.0" in metrics


def test_wiped_follower_comes_back_from_redis_with_every_object(
    make_cluster: Callable[..., Cluster], redis_server: RedisServer
) -> None:
    cluster = redis_cluster(make_cluster, redis_server)
    ids = [f"w-{i:03d}" for i in range(60)]
    create_objects(cluster, ids[:40])
    leader = cluster.leader_index()
    assert cluster.http(leader).post("/v1/cluster/snapshot").json["ok"]
    follower = next(i for i in range(3) if i != leader)
    cluster.stop_node(follower)
    shutil.rmtree(cluster.nodes[follower].data_dir)
    for oid in ids[40:]:  # after the snapshot: only in the leader's log
        assert cluster.http(leader).post(f"{M}/objects/{oid}/transitions/create").status == 201
    cluster.restart(follower)
    assert "restored the redis snapshot of cluster 't1'" in cluster.log(follower)
    assert object_ids(cluster, follower) == ids
    stale = cluster.http(follower).get(f"{M}/objects/w-059?consistency=stale")
    assert stale.status == 200, stale


def test_snapshot_cli_lists_inspects_and_restores_a_lost_cluster(
    make_cluster: Callable[..., Cluster], redis_server: RedisServer
) -> None:
    cluster = redis_cluster(make_cluster, redis_server)
    ids = [f"d-{i}" for i in range(15)]
    create_objects(cluster, ids)
    snap = cluster.http(cluster.leader_index()).post("/v1/cluster/snapshot").json
    source = ["--redis", redis_server.url, "--cluster-id", "t1"]
    listing = fsm("snapshot", "list", *source)
    assert listing.returncode == 0 and str(snap["last_index"]) in listing.stdout, listing
    inspect = fsm("snapshot", "inspect", *source)
    assert inspect.returncode == 0, inspect.stderr
    report = orjson.loads(inspect.stdout)
    assert report["verified"] and report["content"]["objects"] == len(ids)
    # every node loses its disk: restore each data dir from Redis with the CLI, then start
    cluster.stop()
    for node in cluster.nodes:
        shutil.rmtree(node.data_dir)
        restored = fsm("snapshot", "restore", *source, "--to", str(node.data_dir))
        assert restored.returncode == 0, restored.stderr
        assert "restores" not in restored.stderr and "lost" in restored.stdout
    again = fsm("snapshot", "restore", *source, "--to", str(cluster.nodes[0].data_dir))
    assert again.returncode == 1 and "--force" in again.stderr
    cluster.start()
    assert object_ids(cluster, 0) == sorted(ids)
    assert cluster.http(1).post(f"{M}/objects/after/transitions/create").status == 201


def test_projection_equals_cluster_state_after_concurrent_transitions(
    make_cluster: Callable[..., Cluster], redis_server: RedisServer
) -> None:
    cluster = redis_cluster(make_cluster, redis_server, "--redis-projection")
    ids = [f"p-{i:02d}" for i in range(50)]
    create_objects(cluster, ids)
    leader = cluster.leader_index()

    def drive(oid: str) -> int:
        http = cluster.http(leader).__class__(cluster.nodes[leader].url)  # one connection per worker
        applied = 0
        try:
            for step in range(10):  # acquire/release pairs: 20 per object, 1,000 in all
                owner = f"w{step}"
                for name, body in (("acquire", {"data": {"owner": owner}}),
                                   ("release", {"data": {"owner": owner}})):
                    r = http.post(f"{M}/objects/{oid}/transitions/{name}", json=body)
                    assert r.status == 200, r
                    applied += 1
        finally:
            http.close()
        return applied

    with ThreadPoolExecutor(max_workers=10) as pool:
        assert sum(pool.map(drive, ids)) == 1000
    client = connect(redis_server.url)
    expected = {o["id"]: o for o in cluster.http(leader).get(f"{M}/objects?limit=1000").json["objects"]}
    wait_for_projection(cluster, leader, max(o["index"] for o in expected.values()))
    for oid, obj in expected.items():
        stored = orjson.loads(client.get(f"fsm:t1:obj:lock:{oid}"))
        assert (stored["state"], stored["version"], stored["data"]) == (obj["state"], obj["version"], obj["data"])
    assert client.smembers("fsm:t1:state:lock:free") == {oid.encode() for oid in ids}
    assert client.scard("fsm:t1:state:lock:held") == 0
    events = [orjson.loads(fields[b"event"]) for _, fields in client.xrange("fsm:t1:events")]
    moves = [(e["object"], e["version"]) for e in events if e["kind"] == "transition"]
    assert len(moves) == len(set(moves)) == 1000  # every transition once
    indexes = [e["index"] for e in events]
    assert indexes == sorted(indexes)  # in log order
    for oid in ids:  # per object, versions 2..21 in order
        assert [v for o, v in moves if o == oid] == list(range(2, 22))


def wait_for_projection(cluster: Cluster, leader: int, index: int, timeout: float = 30) -> None:
    """Until the leader's projection has written everything through Raft index `index`."""
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = cluster.http(leader).get("/v1/cluster").json.get("projection") or {}
        if status.get("ok") and status.get("last_index", 0) >= index:
            return
        assert time.monotonic() < deadline, f"projection behind: {status}, want index {index}"
        time.sleep(0.1)


def test_projection_is_rebuilt_by_a_new_leader(
    make_cluster: Callable[..., Cluster], redis_server: RedisServer
) -> None:
    cluster = redis_cluster(make_cluster, redis_server, "--redis-projection")
    ids = [f"f-{i}" for i in range(10)]
    create_objects(cluster, ids)
    old = cluster.leader_index()
    cluster.kill(old)
    survivors = [i for i in range(3) if i != old]
    leader = cluster.leader_index(among=survivors)
    http = cluster.http(leader)
    for oid in ids[:5]:
        r = http.post(f"{M}/objects/{oid}/transitions/acquire", json={"data": {"owner": "n"}})
        assert r.status == 200, r
    objects = {o["id"]: o for o in http.get(f"{M}/objects?limit=100").json["objects"]}
    wait_for_projection(cluster, leader, max(o["index"] for o in objects.values()))
    status = http.get("/v1/cluster").json["projection"]
    assert status["rebuilds"] >= 1
    client = connect(redis_server.url)
    for oid, obj in objects.items():
        stored = orjson.loads(client.get(f"fsm:t1:obj:lock:{oid}"))
        assert (stored["state"], stored["version"]) == (obj["state"], obj["version"])
    assert client.smembers("fsm:t1:state:lock:held") == {oid.encode() for oid in ids[:5]}
    events = [orjson.loads(f[b"event"]) for _, f in client.xrange("fsm:t1:events")]
    keys = [(e["object"], e["version"], e["kind"]) for e in events]
    assert len(keys) == len(set(keys)) == 15  # 10 creations + 5 acquisitions, each once
