"""A node killed between writing a snapshot and compacting its log keeps every entry.

A real pysyncobj member (one node, its own leader) in this process, so the
moment of death can be chosen exactly: the dump is renamed into place, and the
process "dies" before pysyncobj drops the log entries the dump covers. Before
cluster/raft/journal.py, pysyncobj saw a journal that did not start where the
dump ends and cleared it at the next start: every entry after the snapshot was
gone, though the node had acknowledged them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pysyncobj.config import SERIALIZER_STATE

from cluster.config import Settings
from cluster.core.entries import Entry, PutMachine, encode
from cluster.raft.member import RaftMember
from cluster.storage.background_dump import BackgroundSnapshotHooks
from schema_lang import load_example
from tests.cluster.harness import free_ports

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    raft, http = free_ports(2)
    return Settings(raft=f"127.0.0.1:{raft}", http=f"127.0.0.1:{http}", data_dir=tmp_path / "data",
                    raft_min_timeout=0.4, raft_max_timeout=0.6)


def started(settings: Settings) -> RaftMember:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    member = RaftMember(settings)
    wait_until(member._isLeader, "the single member never became leader")
    return member


def put_machines(member: RaftMember, names: Iterator[str]) -> None:
    source = load_example("lock")
    for name in names:
        named = source.replace("machine: lock", f"machine: {name}", 1)
        entry = Entry(PutMachine(name, named), at_ms=int(time.time() * 1000), request_id=name)
        outcome = member.apply_entry(encode(entry), sync=True, timeout=10)
        assert outcome.ok, outcome


def wait_until(predicate: object, message: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, message
        time.sleep(0.02)


def test_entries_after_the_snapshot_survive_a_kill_before_compaction(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    died = False
    real_check = BackgroundSnapshotHooks.check

    def dies_before_compaction(self: BackgroundSnapshotHooks) -> int:
        nonlocal died
        if died:
            return SERIALIZER_STATE.SERIALIZING  # the dead process compacts nothing
        state = real_check(self)  # on SUCCESS the dump has just been renamed into place
        if state == SERIALIZER_STATE.SUCCESS:
            died = True
            return SERIALIZER_STATE.SERIALIZING
        return state

    monkeypatch.setattr(BackgroundSnapshotHooks, "check", dies_before_compaction)
    member = started(settings)
    try:
        put_machines(member, (f"m{i}" for i in range(30)))
        member.forceLogCompaction()
        wait_until(lambda: died, "no snapshot was written")
        put_machines(member, (f"m{i}" for i in range(30, 60)))  # acknowledged, after the dump
    finally:
        member.destroy_synchronous()
    monkeypatch.undo()

    member = started(settings)
    try:
        wait_until(lambda: len(member.state.machines_by_name) >= 60,
                   f"after the restart only {len(member.state.machines_by_name)} of 60 machines are there")
        assert sorted(member.state.machines_by_name) == sorted(f"m{i}" for i in range(60))
        # and the node compacts normally afterwards
        member.forceLogCompaction()
        wait_until(lambda: member.snapshots.info.last_index is not None and member.snapshots.info.last_index > 60,
                   "no snapshot after the restart")
    finally:
        member.destroy_synchronous()

    member = started(settings)  # from the new snapshot and the compacted journal
    try:
        wait_until(lambda: len(member.state.machines_by_name) >= 60, "machines lost after compaction")
    finally:
        member.destroy_synchronous()
