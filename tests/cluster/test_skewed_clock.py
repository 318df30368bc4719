"""A node whose clock is far ahead cannot move the cluster's time (issue 17, item 17).

Only the leader stamps entries: a follower forwards its proposals unstamped. Node 2
runs with its wall clock a day ahead (the test-only FSM_CLOCK_OFFSET_MS) and is
started after nodes 0 and 1 agreed on a leader, so it joins as a follower.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .harness import Cluster

DAY_MS = 86_400_000
TIMED = """
machine: timed
states:
  waiting: {timeout: {after: 10m, transition: expire}}
  short: {timeout: {after: 3s, transition: expire}}
  expired: {}
transitions:
  create: {from: null, to: waiting}
  quick: {from: null, to: short}
  touch: {from: [waiting, short]}
  expire: {from: [waiting, short], to: expired}
"""


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def test_a_follower_with_a_clock_a_day_ahead_cannot_move_time_or_fire_timers(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster(n=3, start=False)
    cluster.spawn(0)
    cluster.spawn(1)
    cluster.wait_ready([0, 1])
    leader = cluster.leader_index(among=[0, 1])
    cluster.env = {"FSM_CLOCK_OFFSET_MS": str(DAY_MS)}
    cluster.spawn(2)
    cluster.env = {}
    cluster.wait_ready([2])
    assert cluster.leader_index() == leader != 2

    put = cluster.http(leader).put("/v1/machines/timed", body=TIMED, content_type="application/yaml")
    assert put.status in (200, 201), put
    slow = cluster.http(leader).post("/v1/machines/timed/objects/slow/transitions/create", json={})
    assert slow.status == 201, slow
    quick = cluster.http(leader).post("/v1/machines/timed/objects/q/transitions/quick", json={})
    assert quick.status == 201, quick  # due in 3 s, by the leader's clock
    # writes through the skewed follower: stamped by the leader, with the leader's time
    for i in range(5):
        r = cluster.http(2).post(f"/v1/machines/timed/objects/f{i}/transitions/create", json={})
        assert r.status == 201, r
        at = _ms(r.json["object"]["updated_at"])
        assert abs(at - time.time() * 1000) < 60_000, f"stamped {at - time.time() * 1000:+.0f} ms off"
    touched = cluster.http(2).post("/v1/machines/timed/objects/f0/transitions/touch", json={})
    assert touched.status == 200, touched
    # the short timer fires; the 10-minute ones must not fire with it
    _wait_for(lambda: _state(cluster, leader, "q") == "expired", 30.0)
    for oid in ("slow", "f0", "f4"):
        assert _state(cluster, leader, oid) == "waiting", f"{oid} timed out early"


def _state(cluster: Cluster, node: int, oid: str) -> Any:
    r = cluster.http(node).get(f"/v1/machines/timed/objects/{oid}")
    assert r.status == 200, r
    return r.json["state"]


def _wait_for(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.2)
