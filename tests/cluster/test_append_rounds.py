"""The leader sends one round of appends for all the commands it finds queued, not one per
command (cluster/raft/member.py, `_checkCommandsToApply`): three in-process members."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.config import Peer, Settings
from cluster.core.entries import Entry, PutMachine, encode
from cluster.raft.member import RaftMember
from schema_lang import load_example
from tests.cluster.harness import free_ports

pytestmark = pytest.mark.timeout(60)
QUEUED = 20


@pytest.fixture
def members(tmp_path: Path) -> Iterator[list[RaftMember]]:
    ports = free_ports(6)
    rafts = [f"127.0.0.1:{p}" for p in ports[:3]]
    started = []
    for i in range(3):
        settings = Settings(raft=rafts[i], http=f"127.0.0.1:{ports[3 + i]}", data_dir=tmp_path / f"n{i}",
                            peers=tuple(Peer(r) for r in rafts if r != rafts[i]),
                            raft_min_timeout=0.4, raft_max_timeout=0.6)
        settings.data_dir.mkdir(parents=True)
        started.append(RaftMember(settings))
    yield started
    for member in started:
        member.destroy()


def wait_until(predicate: Any, message: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.02)


def entry(n: int) -> bytes:
    source = load_example("lock").replace("machine: lock", f"machine: m{n}", 1)
    return encode(Entry(PutMachine(f"m{n}", source), at_ms=int(time.time() * 1000), request_id=f"r{n}"))


def test_queued_commands_go_to_each_follower_in_one_round(members: list[RaftMember]) -> None:
    wait_until(lambda: any(m._isLeader() for m in members), "no leader")
    leader = next(m for m in members if m._isLeader())
    assert leader.apply_entry(entry(0), sync=True, timeout=10).ok
    transport = leader._SyncObj__transport  # type: ignore[attr-defined]
    sent: list[tuple[Any, int]] = []
    send = transport.send

    def counting(node: Any, message: Any) -> Any:
        if isinstance(message, dict) and message.get("type") == "append_entries" and message.get("entries"):
            sent.append((node, len(message["entries"])))
        return send(node, message)

    transport.send = counting
    outcomes: list[Any] = []
    with leader.state_lock:  # the Raft thread stops at its next apply; commands queue meanwhile
        leader.apply_entry(entry(1), callback=lambda r, e: outcomes.append(r))
        wait_until(lambda: leader.raftCommitIndex > leader.raftLastApplied, "entry 1 never committed")
        for n in range(2, 2 + QUEUED):
            leader.apply_entry(entry(n), callback=lambda r, e: outcomes.append(r))
        time.sleep(0.1)
    wait_until(lambda: len(outcomes) == QUEUED + 1, "the queued entries never applied")
    assert all(o is not None and o.ok for o in outcomes)
    rounds = [n for node, n in sent if node == sent[0][0]]  # one follower's appends
    assert sum(rounds) >= QUEUED + 1
    assert len(rounds) <= 4, f"{len(rounds)} appends for {QUEUED} queued commands: {rounds}"
