"""The snapshot publisher and the Redis projection against a real redis-server, with fake sources."""

from __future__ import annotations

import pickle
import struct
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import redis
from pysyncobj.config import SERIALIZER_STATE

from cluster.core.records import ObjectRecord
from cluster.core.state import ClusterState
from cluster.storage.background_dump import BackgroundSnapshotHooks
from cluster.storage.base import latest_valid
from cluster.storage.file import FileStore
from cluster.storage.projection import Projection
from cluster.storage.publisher import SnapshotPublisher, read_dump
from cluster.storage.redis import RedisStore, connect
from cluster.storage.snapshot_file import read_snapshot
from tests.redis_server import RedisServer


def write_dump(path: Path, index: int, term: int = 2, state: bytes = b'{"x":1}') -> None:
    raft_data = ((b"cmd", index, term), (b"cmd", index - 1, term), set())
    # version 1 of the format (no index in front): files written before it changed are still read
    path.write_bytes(b"FSMSNAP1" + struct.pack("<Q", len(state)) + state + pickle.dumps(raft_data))


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_read_dump_gives_index_and_term(tmp_path: Path) -> None:
    write_dump(tmp_path / "raft.snapshot", 17, term=4)
    _, index, term = read_dump(tmp_path / "raft.snapshot")
    assert (index, term) == (17, 4)


def test_publisher_copies_each_dump_and_prunes(tmp_path: Path) -> None:
    dump = tmp_path / "raft.snapshot"
    store = FileStore(tmp_path / "snapshots", "c1")
    publisher = SnapshotPublisher(store, dump, node="n1", keep=2)
    publisher.start()
    try:
        for index in (10, 20, 30):
            write_dump(dump, index)
            publisher.notify(index)
            wait_until(lambda i=index: publisher.status.last_index == i)
        assert [m.index for m in store.list_snapshots()] == [30, 20]
        assert publisher.status.ok and publisher.status.size == dump.stat().st_size
    finally:
        publisher.stop()


def test_publisher_retries_until_redis_is_back(tmp_path: Path, redis_server: RedisServer) -> None:
    dump = tmp_path / "raft.snapshot"
    store = RedisStore(connect(redis_server.url, timeout=1.0, connect_timeout=0.5), "c1")
    publisher = SnapshotPublisher(store, dump, node="n1", base_delay=0.1, max_delay=0.4)
    publisher.start()
    try:
        redis_server.stop()
        write_dump(dump, 5)
        publisher.notify(5)
        wait_until(lambda: not publisher.status.ok)
        assert publisher.status.error
        write_dump(dump, 9)  # a newer dump while Redis is down: that one lands
        publisher.notify(9)
        redis_server.start()
        wait_until(lambda: publisher.status.ok and publisher.status.last_index == 9)
        found = latest_valid(RedisStore(connect(redis_server.url), "c1"))
        assert found is not None and found[0].index == 9 and found[0].node == "n1"
    finally:
        publisher.stop()


class FakeMember:
    def __init__(self) -> None:
        self.state = ClusterState()
        self.state_lock = threading.Lock()
        self.applied_through = 0
        self.leader = True

    def put(self, oid: str, state: str, version: int, index: int) -> ObjectRecord:
        record = ObjectRecord("m", oid, "sha256:r", state, None, {}, version, 0, None, (), 0, 0, None,
                              index, ())
        self.state.put_object(("m", oid), record)
        self.applied_through = index
        return record


def event(index: int, oid: str, to: str, version: int) -> dict[str, Any]:
    return {"index": index, "machine": "m", "object": oid, "kind": "transition", "to": to,
            "version": version}


def test_projection_rebuilds_then_follows_events_once_in_order(redis_server: RedisServer) -> None:
    member = FakeMember()
    member.put("a", "free", 1, 1)
    client = connect(redis_server.url)
    projection = Projection(client, "c1", member, lambda: member.leader, node="n1")
    projection.start()
    try:
        wait_until(lambda: projection.status.rebuilds == 1)
        assert client.smembers("fsm:c1:state:m:free") == {b"a"}
        for index, (oid, to, version) in enumerate([("a", "held", 2), ("b", "free", 1), ("a", "free", 3)], 2):
            member.put(oid, to, version, index)
            projection.on_applied(index, (event(index, oid, to, version),))
        projection.on_applied(3, (event(3, "b", "free", 1),))  # a replay is refused by the stream id
        wait_until(lambda: projection.status.last_index == 4)
        assert orjson.loads(client.get("fsm:c1:obj:m:a"))["state"] == "free"
        assert client.smembers("fsm:c1:state:m:free") == {b"a", b"b"}
        assert client.smembers("fsm:c1:state:m:held") == set()
        ids = [entry_id for entry_id, _ in client.xrange("fsm:c1:events")]
        assert ids == [b"2-0", b"3-0", b"4-0"]
    finally:
        projection.stop()


def test_projection_catches_up_after_redis_outage(redis_server: RedisServer) -> None:
    member = FakeMember()
    client = connect(redis_server.url, timeout=1.0, connect_timeout=0.5)
    projection = Projection(client, "c1", member, lambda: member.leader, node="n1")
    projection.start()
    try:
        wait_until(lambda: projection.status.rebuilds == 1)
        redis_server.stop()
        member.put("x", "held", 1, 7)
        projection.on_applied(7, (event(7, "x", "held", 1),))
        wait_until(lambda: not projection.status.ok)
        redis_server.start()
        wait_until(lambda: projection.status.ok and projection.status.rebuilds >= 2, timeout=20)
        fresh = connect(redis_server.url)
        assert fresh.smembers("fsm:c1:state:m:held") == {b"x"}
    finally:
        projection.stop()


def test_a_follower_writes_nothing(redis_server: RedisServer) -> None:
    member = FakeMember()
    member.leader = False
    client: redis.Redis = connect(redis_server.url)
    projection = Projection(client, "c1", member, lambda: member.leader)
    projection.start()
    try:
        member.put("a", "free", 1, 1)
        projection.on_applied(1, (event(1, "a", "free", 1),))
        time.sleep(0.5)
        assert client.keys("*") == []
    finally:
        projection.stop()


def test_background_dump_reports_serializing_then_success_once(tmp_path: Path) -> None:
    member = FakeMember()
    member.put("a", "free", 1, 1)
    written: list[int | None] = []
    dump = tmp_path / "raft.snapshot"
    hooks = BackgroundSnapshotHooks(lambda: member.state, lambda s: None, on_written=written.append,
                                    dump_file=dump)
    (tmp_path / "raft.snapshot.tmp").write_bytes(b"stale")
    hooks.serialize(str(tmp_path / "raft.snapshot.tmp"), ((b"c", 5, 1), (b"c", 4, 1), set()))
    assert not (tmp_path / "raft.snapshot.tmp").exists()  # pysyncobj's own rename must fail
    seen = []
    wait_until(lambda: seen.append(hooks.check()) or seen[-1] != SERIALIZER_STATE.SERIALIZING)
    assert seen[-1] == SERIALIZER_STATE.SUCCESS and hooks.check() == SERIALIZER_STATE.NOT_SERIALIZING
    assert written == [5] and hooks.info.last_index == 5
    state, _ = read_snapshot(dump)
    assert state.get_object("m", "a") is not None


def dump_hooks(tmp_path: Path, member: FakeMember) -> tuple[BackgroundSnapshotHooks, Path]:
    dump = tmp_path / "raft.snapshot"
    hooks = BackgroundSnapshotHooks(lambda: member.state, lambda s: None, dump_file=dump)
    return hooks, dump


def wait_for_dump_process(hooks: BackgroundSnapshotHooks) -> None:
    wait_until(lambda: not hooks.writing())


def test_background_dump_goes_in_place_only_when_pysyncobj_asks(tmp_path: Path) -> None:
    """On the Raft thread (check), so it cannot interleave with a dump received from the leader."""
    member = FakeMember()
    member.put("a", "free", 1, 1)
    hooks, dump = dump_hooks(tmp_path, member)
    write_dump(dump, index=2)
    hooks.serialize(str(tmp_path / "raft.snapshot.tmp"), ((b"c", 5, 1), (b"c", 4, 1), set()))
    wait_for_dump_process(hooks)
    assert read_dump(dump)[1] == 2  # written, not yet renamed over the old dump
    assert hooks.check() == SERIALIZER_STATE.SUCCESS
    assert read_snapshot(dump)[0].get_object("m", "a") is not None


def test_a_dump_received_meanwhile_wins_and_the_log_is_kept(tmp_path: Path) -> None:
    member = FakeMember()
    member.put("a", "free", 1, 1)
    hooks, dump = dump_hooks(tmp_path, member)
    hooks.serialize(str(tmp_path / "raft.snapshot.tmp"), ((b"c", 5, 1), (b"c", 4, 1), set()))
    write_dump(dump, index=90)  # the leader's snapshot, installed while ours was being written
    wait_for_dump_process(hooks)
    # FAILED: pysyncobj must not compact its log up to our index on the strength of our dump
    assert hooks.check() == SERIALIZER_STATE.FAILED
    assert read_dump(dump)[1] == 90
    assert not list(tmp_path.glob("*.tmp"))
