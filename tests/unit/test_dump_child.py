"""The dump's forked process (storage/dump_child.py, storage/background_dump.py).

A node writes its snapshot from a child process so that its own threads keep
the GIL. What that must not cost: the dump is the state as of the moment
pysyncobj asked for it (later applies are not in it), a failed write is
reported and the log kept, a node killed mid-dump leaves no writer behind, and
the child holds none of the node's sockets open.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from pysyncobj.config import SERIALIZER_STATE

from cluster.core.records import ObjectRecord
from cluster.core.state import ClusterState
from cluster.storage.background_dump import BackgroundSnapshotHooks
from cluster.storage.dump_child import DumpChild
from cluster.storage.snapshot_file import read_snapshot

RAFT_DATA = ((b"c", 5, 1), (b"c", 4, 1), set())


def put(state: ClusterState, oid: str, index: int) -> None:
    state.put_object(("m", oid), ObjectRecord("m", oid, "sha256:r", "free", None, {}, 1, 0, None, (),
                                              0, 0, None, index, ()))


def answer(hooks: BackgroundSnapshotHooks, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while (state := hooks.check()) == SERIALIZER_STATE.SERIALIZING:
        assert time.monotonic() < deadline, "the dump process never finished"
        time.sleep(0.01)
    return state


def alive(pid: int) -> bool:
    """Running, not a zombie (a zombie may wait long for its reaper in a container)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_dump_holds_the_state_as_of_the_request_not_later_applies(tmp_path: Path) -> None:
    state = ClusterState()
    put(state, "a", 1)
    hooks = BackgroundSnapshotHooks(lambda: state, lambda s: None, dump_file=tmp_path / "raft.snapshot")
    hooks.serialize(str(tmp_path / "raft.snapshot.tmp"), RAFT_DATA)
    put(state, "b", 6)  # applied while the child writes
    state.objects["m"].pop("a")
    assert answer(hooks) == SERIALIZER_STATE.SUCCESS
    dumped, raft_data = read_snapshot(tmp_path / "raft.snapshot")
    assert dumped.get_object("m", "a") is not None and dumped.get_object("m", "b") is None
    assert raft_data[0][1] == 5 and hooks.info.last_index == 5 and hooks.info.ok


def test_a_failed_write_is_reported_with_its_cause_and_the_log_kept(tmp_path: Path) -> None:
    dump = tmp_path / "gone" / "raft.snapshot"  # its directory does not exist: the child cannot write
    hooks = BackgroundSnapshotHooks(lambda: ClusterState(), lambda s: None, dump_file=dump)
    hooks.serialize(str(tmp_path / "raft.snapshot.tmp"), RAFT_DATA)
    assert answer(hooks) == SERIALIZER_STATE.FAILED  # pysyncobj keeps its log and tries again
    assert not hooks.info.ok and "No such file or directory" in (hooks.info.error or "")
    assert hooks.check() == SERIALIZER_STATE.NOT_SERIALIZING  # reported once


def test_a_node_killed_mid_dump_leaves_no_dump_process(tmp_path: Path) -> None:
    node = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import threading, time
        from cluster.storage.dump_child import DumpChild

        def raft_thread():  # the Raft thread forks it
            child = DumpChild.start(lambda: time.sleep(60))
            print(child.pid, flush=True)
            time.sleep(60)

        threading.Thread(target=raft_thread).start()
    """)], stdout=subprocess.PIPE, text=True)
    try:
        child = int(node.stdout.readline())  # type: ignore[union-attr]
        assert alive(child)
    finally:
        node.kill()
        node.wait()
    deadline = time.monotonic() + 5
    while alive(child):
        assert time.monotonic() < deadline, "the dump process outlived its node"
        time.sleep(0.02)


def test_the_dump_process_holds_none_of_the_nodes_sockets(tmp_path: Path) -> None:
    mine, peer = socket.socketpair()
    child = DumpChild.start(lambda: time.sleep(30))
    try:
        mine.close()  # the node drops a connection while the child runs
        peer.settimeout(2)
        assert peer.recv(1) == b""  # the peer sees the close now, not when the dump ends
    finally:
        child.stop()
        peer.close()
    assert not alive(child.pid) and child.outcome == "stopped"


def test_stop_kills_a_running_dump_and_reaps_it() -> None:
    child = DumpChild.start(lambda: time.sleep(30))
    assert child.poll() is None and alive(child.pid)
    child.stop()
    assert not alive(child.pid)
    try:
        os.kill(child.pid, 0)  # reaped: the pid is gone
    except ProcessLookupError:
        pass
    else:
        raise AssertionError(f"process {child.pid} still exists after stop()")


def test_a_child_that_raises_answers_with_its_message(tmp_path: Path) -> None:
    def fails() -> Any:
        raise ValueError("the state would not encode")

    child = DumpChild.start(fails)
    deadline = time.monotonic() + 10
    while (outcome := child.poll()) is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert outcome == "the state would not encode"


def test_a_fork_that_fails_is_reported_and_the_log_kept(tmp_path: Path, monkeypatch: Any) -> None:
    def no_memory() -> int:
        raise OSError(12, "Cannot allocate memory")  # what strict overcommit answers a big node

    monkeypatch.setattr(os, "fork", no_memory)
    hooks = BackgroundSnapshotHooks(lambda: ClusterState(), lambda s: None, dump_file=tmp_path / "raft.snapshot")
    hooks.serialize(str(tmp_path / "raft.snapshot.tmp"), RAFT_DATA)
    assert hooks.check() == SERIALIZER_STATE.FAILED
    assert not hooks.info.ok and "cannot start the dump process" in (hooks.info.error or "")
    assert hooks.check() == SERIALIZER_STATE.NOT_SERIALIZING
    assert not (tmp_path / "raft.snapshot").exists()
