"""Failover under faults (SPEC section 1): kill -9 of the leader under concurrent writes,
a restarted node catching up, a whole-cluster crash, and a frozen (SIGSTOP) leader.

Writers use compare-and-set (`expected_version`) on their own object and write the
field `v<N>` = a token when they move it to version N, so an acknowledged write is
checked exactly: afterwards `data["v<N>"]` must hold its token. Every read, on every
node, records (object, version) -> (state, data), which must never disagree; and the
whole history must be linearizable (tests/faults/linearizability.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cluster.client import AsyncClient, Client
from cluster.client.errors import FsmError, Timeout, Unavailable, VersionConflict
from tests.cluster.harness import Cluster
from tests.faults.linearizability import History, VersionedRegister, check

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(150)]

MACHINE = "register"
REGISTER = """\
machine: register
description: a versioned register for fault tests
history: 10
states:
  live: {}
transitions:
  create: {from: null, to: live}
  write: {from: live}
"""
MODEL = VersionedRegister({"create": [None], "write": ["live"]})


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    started: list[Cluster] = []

    def make(n: int = 3) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(started)}", n=n)
        started.append(cluster)
        return cluster.start()

    try:
        yield make
    finally:
        for cluster in started:
            cluster.stop()


class Workload:
    """Concurrent CAS writers (one object each) and per-node readers, with everything recorded."""

    def __init__(self, objects: list[str]) -> None:
        self.objects = objects
        self.history = History()
        self.acked: dict[str, dict[int, str]] = {oid: {} for oid in objects}
        self.ack_times: dict[str, list[float]] = {oid: [] for oid in objects}
        self.observed: dict[tuple[str, int], bytes] = {}
        self.disagreements: list[str] = []
        self.reads = 0

    def observe(self, obj: dict[str, Any], where: str) -> None:
        key = (obj["id"], obj["version"])
        value = orjson.dumps([obj["state"], obj["data"]], option=orjson.OPT_SORT_KEYS)
        first = self.observed.setdefault(key, value)
        if first != value:
            self.disagreements.append(f"{key} read as {first!r} and as {value!r} (on {where})")
        self.reads += 1

    async def read(self, fsm: AsyncClient, process: str, oid: str, where: str) -> dict[str, Any] | None:
        op = self.history.invoke(process, oid, "read")
        try:
            obj = await fsm.get_object(MACHINE, oid)
        except Unavailable:
            self.history.discard(op)
            return None
        except FsmError:
            self.history.timeout(op)
            return None
        self.history.complete(op, (obj["state"], obj["version"]))
        self.observe(obj, where)
        return obj

    async def current_version(self, fsm: AsyncClient, process: str, oid: str) -> int:
        for _ in range(30):
            obj = await self.read(fsm, process, oid, "writer")
            if obj is not None:
                return int(obj["version"])
            await asyncio.sleep(0.2)
        raise AssertionError(f"{process} could not read {oid} for 30 attempts")

    async def writer(self, process: str, urls: list[str], oid: str, stop_at: float) -> None:
        async with AsyncClient(urls, deadline=10.0, attempt_timeout=2.0) as fsm:
            version = await self.current_version(fsm, process, oid)
            while time.monotonic() < stop_at:
                target = version + 1
                token = f"{process}-{target}"
                op = self.history.invoke(process, oid, "transition", ("write", version, None))
                try:
                    result = await fsm.transition(
                        MACHINE, oid, "write", {f"v{target}": token}, expected_version=version
                    )
                except VersionConflict as exc:
                    self.history.complete(op, ("version_conflict", exc.actual))
                except Unavailable:
                    self.history.discard(op)  # refused before proposing: certainly not applied
                except Timeout:
                    self.history.timeout(op)
                else:
                    got = int(result["object"]["version"])
                    self.history.complete(op, ("ok", got))
                    assert got == target, f"{process}: CAS at {version} gave version {got}"
                    self.acked[oid][got] = token
                    self.ack_times[oid].append(time.monotonic())
                    self.observe(result["object"], "write answer")
                    version = got
                    await asyncio.sleep(0.02)  # bounds the data (one field per write) under 64 KiB
                    continue
                version = await self.current_version(fsm, process, oid)

    async def reader(self, url: str, stop_at: float) -> None:
        """Linearizable and stale reads on one node only (no failover), errors ignored."""
        process = f"reader@{url}"
        async with AsyncClient([url], deadline=1.5, attempt_timeout=1.0, discover=False) as fsm:
            while time.monotonic() < stop_at:
                for oid in self.objects:
                    await self.read(fsm, process, oid, url)
                    with contextlib.suppress(FsmError):
                        self.observe(await fsm.get_object(MACHINE, oid, consistency="stale"), url)
                await asyncio.sleep(0.05)

    async def run(self, writer_urls: list[list[str]], reader_urls: list[str], seconds: float) -> None:
        stop_at = time.monotonic() + seconds
        tasks = [self.writer(f"w{i}", urls, oid, stop_at)
                 for i, (urls, oid) in enumerate(zip(writer_urls, self.objects, strict=True))]
        tasks += [self.reader(url, stop_at) for url in reader_urls]
        await asyncio.gather(*tasks)

    def assert_consistent(self) -> None:
        assert not self.disagreements, "\n".join(self.disagreements[:10])
        result = check(self.history.operations(), MODEL)
        assert result.ok, result.explanation

    def assert_acked_present(self, urls: list[str]) -> None:
        with Client(urls, deadline=30.0) as fsm:
            for oid, acked in self.acked.items():
                obj = fsm.get_object(MACHINE, oid)
                assert obj["version"] >= max(acked, default=1), (oid, obj["version"])
                missing = {v: t for v, t in acked.items() if obj["data"].get(f"v{v}") != t}
                assert not missing, f"{oid}: acknowledged writes lost or changed: {sorted(missing)[:10]}"


def setup_objects(cluster: Cluster, count: int) -> Workload:
    """The machine and `count` objects, their creation recorded in the workload's history."""
    work = Workload([f"obj-{i}" for i in range(count)])
    with Client(cluster.urls) as fsm:
        fsm.put_machine(MACHINE, REGISTER)
        for oid in work.objects:
            op = work.history.invoke("setup", oid, "transition", ("create", None, "live"))
            work.history.complete(op, ("ok", fsm.transition(MACHINE, oid, "create")["object"]["version"]))
    return work


def rotations(urls: list[str], count: int) -> list[list[str]]:
    return [urls[i % len(urls):] + urls[: i % len(urls)] for i in range(count)]


def applied_index(cluster: Cluster, i: int) -> int:
    return int(cluster.http(i).get("/v1/cluster").json["applied_index"])


def wait_caught_up(cluster: Cluster, i: int, others: list[int], timeout: float = 30.0) -> None:
    target = max(int(cluster.http(j).get("/v1/cluster").json["commit_index"]) for j in others)
    deadline = time.monotonic() + timeout
    while applied_index(cluster, i) < target:
        assert time.monotonic() < deadline, f"node {i} stuck below index {target}"
        time.sleep(0.2)


def stale_objects(cluster: Cluster, i: int, objects: list[str]) -> list[Any]:
    http = cluster.http(i)
    return [http.get(f"/v1/machines/{MACHINE}/objects/{oid}?consistency=stale").json for oid in objects]


async def test_leader_killed_under_writes_loses_no_acknowledged_write(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster()
    work = setup_objects(cluster, 4)
    leader = cluster.leader_index()
    survivors = [i for i in range(3) if i != leader]
    load = asyncio.create_task(work.run(rotations(cluster.urls, 4), cluster.urls, seconds=14.0))
    await asyncio.sleep(3.0)
    killed_at = time.monotonic()
    await asyncio.to_thread(cluster.kill, leader)
    new_leader = await asyncio.to_thread(cluster.leader_index, 10.0, survivors)
    elected_after = time.monotonic() - killed_at
    await load

    assert new_leader in survivors and elected_after < 10.0
    for oid, times in work.ack_times.items():
        assert any(t > killed_at + elected_after for t in times), f"no write acked on {oid} after failover"
    work.assert_consistent()
    work.assert_acked_present([cluster.urls[i] for i in survivors])


async def test_restarted_node_catches_up_and_agrees(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster()
    work = setup_objects(cluster, 3)
    objects = work.objects
    victim = cluster.leader_index()
    cluster.kill(victim)
    others = [i for i in range(3) if i != victim]
    await work.run(rotations([cluster.urls[i] for i in others], 3), [], seconds=4.0)
    assert all(work.acked.values())

    await asyncio.to_thread(cluster.restart, victim)
    await asyncio.to_thread(wait_caught_up, cluster, victim, others)
    views = [await asyncio.to_thread(stale_objects, cluster, i, objects) for i in range(3)]
    assert views[victim] == views[others[0]] == views[others[1]]
    work.assert_acked_present([cluster.urls[victim]])
    work.assert_consistent()


async def test_whole_cluster_killed_and_restarted_loses_no_acknowledged_write(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster()
    work = setup_objects(cluster, 3)
    objects = work.objects
    await work.run(rotations(cluster.urls, 3), [], seconds=4.0)
    assert sum(len(a) for a in work.acked.values()) >= 10
    for i in range(3):
        cluster.kill(i)
    for i in range(3):
        cluster.spawn(i)
    await asyncio.to_thread(cluster.wait_ready)
    work.assert_acked_present(cluster.urls)
    work.assert_consistent()
    with Client(cluster.urls) as fsm:  # and the cluster still takes writes
        version = fsm.get_object(MACHINE, objects[0])["version"]
        fsm.transition(MACHINE, objects[0], "write", {"after": "restart"}, expected_version=version)


async def test_frozen_leader_steps_down_and_no_version_has_two_states(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster()
    work = setup_objects(cluster, 3)
    objects = work.objects
    old = cluster.leader_index()
    others = [cluster.urls[i] for i in range(3) if i != old]
    load = asyncio.create_task(work.run(rotations(others, 3), cluster.urls, seconds=14.0))
    await asyncio.sleep(1.0)
    cluster.pause(old)
    paused_at = time.monotonic()
    await asyncio.sleep(7.0)
    cluster.resume(old)
    await load

    # an election takes 1-2 s; on a busy box the clients' retries add a few more seconds
    for oid, times in work.ack_times.items():
        assert any(paused_at + 3 < t < paused_at + 7 for t in times), f"{oid}: no writes while frozen"
    deadline = time.monotonic() + 15
    while True:
        leader = (cluster.http(old).get("/v1/cluster").json.get("leader") or {}).get("raft")
        if leader is not None and leader != cluster.nodes[old].raft:
            break
        assert time.monotonic() < deadline, f"node {old} still names {leader} as leader"
        await asyncio.sleep(0.2)
    for oid in objects:  # the old leader's own reads, once caught up, agree with the rest
        work.observe(cluster.http(old).get(f"/v1/machines/{MACHINE}/objects/{oid}").json, "old leader")
    work.assert_consistent()
    work.assert_acked_present(cluster.urls)
