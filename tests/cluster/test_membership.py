"""Members that know each other and membership changes (SPEC 4.8, issue 15), with real nodes."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from cluster.__main__ import main
from cluster.client import Client
from tests.redis_server import RedisServer

from .ops_harness import Load, OpsCluster

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(240)]


JSON_LOGS = ("--log-format", "json", "--log-level", "DEBUG", "--access-log")


def retry_unavailable(send, seconds: float = 10.0):
    """Sends again after a 503, as a client does (SPEC 4.9: 503 was not applied, retry),
    and after `unsafe_change` while the members catch up. Removing the leader through a
    follower can meet the hand-over mid-way (the request was forwarded to the old leader,
    which forwarded it to a new one whose view of the leader had not caught up yet); and
    right after a node joined, the leader may not count it as reachable until it has
    acknowledged an entry, so the removal is refused until then (and would stay refused,
    failing the test, if the check were wrong)."""
    deadline = time.monotonic() + seconds
    while True:
        r = send()
        retriable = r.status == 503 or (r.status == 409 and r.error_code == "unsafe_change")
        if not retriable or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def test_members_know_each_other_join_leave_and_unsafe_changes_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with OpsCluster(tmp_path, n=4, joins={3: 0}, extra_args=JSON_LOGS).start_initial() as cluster:
        cluster.wait_members([0, 1, 2], {0, 1, 2})
        leader = cluster.nodes[cluster.leader_index()]
        for i in range(3):
            body = cluster.status(i)
            assert body["leader"] == {"raft": leader.raft, "http": leader.http}
            assert all(m["name"] == m["raft"] for m in body["members"])
        with Client(cluster.urls[1]) as fsm:
            fsm.list_machines()
            assert set(fsm.urls) == set(cluster.urls[:3])
        # the request id goes from the request into the Raft entry (logged by every node
        # that applies it) and back in the answer
        follower = cluster.follower_indexes()[0]
        source = "states: {a: {}}\ntransitions: {create: {from: null, to: a}}\n"
        r = cluster.http(follower).put("/v1/machines/m-rid", body=source, content_type="application/yaml",
                                       headers={"X-Request-Id": "rid-42"})
        assert r.status in (200, 201) and r.headers["X-Request-Id"] == "rid-42", r
        time.sleep(0.5)
        for i in range(3):
            lines = [json.loads(line) for line in cluster.log(i).splitlines() if line.startswith("{")]
            mine = [line for line in lines if line.get("request_id") == "rid-42"]
            assert any(line.get("index") for line in mine), (i, mine)  # the apply, on every node
            if i == follower:
                assert any(line.get("status") in (200, 201) for line in mine), mine  # the access line
        http = cluster.http(follower)  # a follower forwards membership changes to the leader
        for _ in range(3):  # issue 17 item 16: an address nothing answers on never goes in
            r = http.post("/v1/cluster/members", json={"raft": "127.0.0.1:9", "http": "127.0.0.1:10"})
            assert (r.status, r.error_code) == (409, "unsafe_change"), r
        assert {m["raft"] for m in cluster.status(follower)["members"]} == {n.raft for n in cluster.nodes[:3]}
        # something listens but never takes part: the three members are a quorum of 4 and
        # of 5, not of 6, so the third such add is refused and the cluster keeps a leader
        listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(3)]
        try:
            bogus = [f"127.0.0.1:{s.getsockname()[1]}" for s in listeners]
            url = ["--url", cluster.urls[follower]]
            for address in bogus[:2]:
                assert main(["member", "add", address, *url]) == 0, capsys.readouterr()
            assert main(["member", "add", bogus[2], *url]) == 1
            assert "error: unsafe_change: " in capsys.readouterr().err
            cluster.wait_ready([0, 1, 2], timeout=10)
            for address in bogus[:2]:
                assert main(["member", "remove", address, *url]) == 0, capsys.readouterr()
            capsys.readouterr()
        finally:
            for listener in listeners:
                listener.close()
        cluster.wait_members([0, 1, 2], {0, 1, 2})
        r = http.delete("/v1/cluster/members/127.0.0.1:9")
        assert (r.status, r.error_code) == (404, "not_found"), r
        # a fourth node joins with --join; then the leader is removed (it hands over first)
        cluster.spawn(3)
        cluster.wait_ready([3])
        cluster.wait_members([0, 1, 2, 3], {0, 1, 2, 3})
        leader = cluster.leader_index()
        rest = [i for i in range(4) if i != leader]
        r = retry_unavailable(
            lambda: cluster.http(rest[0]).delete(f"/v1/cluster/members/{cluster.nodes[leader].raft}")
        )
        assert r.status == 200, r
        cluster.wait_members(rest, set(rest))
        cluster.stop_node(leader)
        # with one member down, removing another would leave 1 of 2: no quorum
        leader = cluster.leader_index(among=rest)
        down, other = [i for i in rest if i != leader]
        cluster.kill(down)
        time.sleep(1.0)
        r = cluster.http(leader).delete(f"/v1/cluster/members/{cluster.nodes[other].raft}")
        assert (r.status, r.error_code) == (409, "unsafe_change"), r
        assert cluster.http(other).get("/readyz").status == 200


@pytest.mark.slow  # ~30-50 s on a shared 2-core box; the members test covers --join and removing the leader
def test_grow_to_five_with_join_and_shrink_to_three_removing_the_leader_under_load(tmp_path: Path) -> None:
    cluster = OpsCluster(tmp_path, n=5, joins={3: 0, 4: 1})
    with cluster.start_initial():
        started = time.monotonic()
        load = Load(cluster, writers=3).start(seconds=90)
        cluster.spawn(3)
        cluster.wait_ready([3])
        cluster.spawn(4)
        cluster.wait_ready([4])
        cluster.wait_members(list(range(5)), set(range(5)))
        leader = cluster.leader_index()
        rest = [i for i in range(5) if i != leader]
        gone = {leader, rest[0]}
        r = cluster.http(rest[1]).delete(f"/v1/cluster/members/{cluster.nodes[leader].raft}")
        assert r.status == 200, r
        r = cluster.http(rest[2]).delete(f"/v1/cluster/members/{cluster.nodes[rest[0]].raft}")
        assert r.status == 200, r
        remaining = sorted(set(range(5)) - gone)
        cluster.wait_members(remaining, set(remaining))
        for i in gone:
            cluster.stop_node(i)
        changed_at = time.monotonic()
        load.stop(after=2.0)
        load.join()
        print(f"grow/shrink: {load.acked} acknowledged writes, longest gap {load.longest_gap():.2f}s, "
              f"{load.indeterminate_writes()} indeterminate, changes done {changed_at - started:.1f}s")
        assert load.acked > 50, load.acked
        load.work.assert_consistent()
        load.work.assert_acked_present([cluster.urls[i] for i in remaining])
        assert load.longest_gap() < 10.0, load.longest_gap()


def test_a_joining_node_starts_from_the_redis_snapshot(tmp_path: Path, redis_server: RedisServer) -> None:
    redis = ("--redis", redis_server.url, "--cluster-id", "join")
    with OpsCluster(tmp_path, n=4, joins={3: 1}, extra_args=redis).start_initial() as cluster:
        http = cluster.http(0)
        source = "states: {a: {}}\ntransitions: {create: {from: null, to: a}}\n"
        assert http.put("/v1/machines/j", body=source, content_type="application/yaml").status in (200, 201)
        for i in range(20):
            assert http.post(f"/v1/machines/j/objects/o{i}/transitions/create").status == 201
        r = http.post("/v1/cluster/snapshot")
        assert r.status == 200 and r.json["ok"], r
        assert http.post("/v1/machines/j/objects/after/transitions/create").status == 201  # past it
        cluster.spawn(3)
        cluster.wait_ready([3])
        cluster.wait_members([0, 1, 2, 3], {0, 1, 2, 3})
        assert "was empty: restored the" in cluster.log(3), cluster.log(3)[-2000:]
        new = cluster.http(3)
        for oid in ("o0", "o19", "after"):
            r = new.get(f"/v1/machines/j/objects/{oid}?consistency=stale")
            assert r.status == 200, (oid, r)
