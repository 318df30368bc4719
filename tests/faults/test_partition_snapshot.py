"""A leader cut off in a minority, while the majority moves on past a snapshot.

The old leader keeps accepting proposals it can never commit. When the
partition heals, the new leader has compacted its log beyond the point where
the two logs part, so it sends the old leader a snapshot. pysyncobj raised a
follower's commit index on every snapshot chunk without checking its log, so
the old leader *applied* its own uncommitted entries and told their clients
they had succeeded (the soak's register anomaly: an acknowledgement carrying a
version other nodes never had). Every write sent to the cut-off leader must end
unacknowledged (503 or 504), none may exist anywhere afterwards, and every node
must end with the same objects.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster, Http
from tests.faults.nemesis import Nemesis
from tests.faults.workloads import REGISTER_YAML

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(240)]
WAITING_WRITES = 12
PAD = "x" * 2000


def test_cut_off_leader_acknowledges_nothing_when_healed_by_a_snapshot(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, n=3, raft_bind=True, extra_args=("--log-compaction-entries", "100",
                                                                  "--log-compaction-bytes", "0",
                                                                  "--leader-compaction-factor", "1"))
    with Nemesis.around(cluster, seed=5) as nemesis:
        old = nemesis.leader()
        leader_http = cluster.http(old)
        assert leader_http.put("/v1/machines/register", body=REGISTER_YAML,
                               content_type="application/yaml").status in (200, 201)
        nemesis.isolate(old)

        # clients of the cut-off leader wait long: long enough to see the partition heal
        answers: dict[int, int] = {}
        waited_out: list[int] = []
        def write_to_old_leader(n: int) -> None:
            http = Http(cluster.nodes[old].url, timeout=60.0)
            r = http.post(f"/v1/machines/register/objects/iso-{n}/transitions/create?timeout=25s", json={})
            answers[n] = r.status
            if "no outcome within" in r.json.get("error", {}).get("message", ""):
                waited_out.append(n)  # nobody told the node what became of it
        waiting = [threading.Thread(target=write_to_old_leader, args=(n,)) for n in range(WAITING_WRITES)]
        for thread in waiting:
            thread.start()

        others = [i for i in range(cluster.n) if i != old]
        new = nemesis.leader(among=others)
        while new == old:  # the others still name the old leader until their election timeout
            time.sleep(0.2)
            new = nemesis.leader(among=others)
        majority_http = cluster.http(new)
        created: set[str] = set()
        tried = 0
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and len(created) < 600:  # several snapshots' worth
            r = majority_http.post(f"/v1/machines/register/objects/m-{tried}/transitions/create",
                                   json={"data": {"pad": PAD}})  # a snapshot of many chunks
            assert r.status in (201, 503, 504), r  # 503/504 while the majority settles its leader
            if r.status == 201:
                created.add(f"m-{tried}")
            tried += 1
        assert len(created) > 300, f"only {len(created)} writes reached the majority"

        nemesis.heal()
        for thread in waiting:
            thread.join(timeout=60)
        print(f"old leader {old}: answers {sorted(answers.values())}; majority wrote {len(created)}")
        assert len(answers) == WAITING_WRITES
        acknowledged = {n: s for n, s in answers.items() if s not in (503, 504)}
        assert not acknowledged, f"the cut-off leader acknowledged uncommitted writes: {acknowledged}"
        # each is answered once its fate is settled (replaced, or jumped over by a snapshot)
        assert not waited_out, f"writes left waiting for their timeout: {sorted(waited_out)}"
        ids = converged_objects(cluster)
        stray = sorted(i for i in ids if i.startswith("iso-"))
        assert not stray, f"never-acknowledged writes exist: {stray}"
        assert created <= ids, f"acknowledged writes are missing: {sorted(created - ids)[:10]}"
        assert ids <= created | {f"m-{n}" for n in range(tried)}


def converged_objects(cluster: Cluster, timeout: float = 60.0) -> frozenset[str]:
    """The object ids, once every node holds the same ones (stale reads, node by node)."""
    deadline = time.monotonic() + timeout
    while True:
        views = [object_ids(cluster, i) for i in range(cluster.n)]
        if all(v == views[0] for v in views) and views[0] is not None:
            break
        assert time.monotonic() < deadline, f"nodes did not converge: {[len(v or ()) for v in views]}"
        time.sleep(0.5)
    assert views[0] is not None
    return views[0]


def object_ids(cluster: Cluster, i: int) -> frozenset[str] | None:
    ids: set[str] = set()
    cursor = ""
    while True:
        r = cluster.http(i).get(f"/v1/machines/register/objects?consistency=stale&limit=1000{cursor}")
        if r.status != 200:
            return None
        ids.update(item["id"] for item in r.json["objects"])
        if not r.json.get("next"):
            return frozenset(ids)
        cursor = f"&after={r.json['next']}"
