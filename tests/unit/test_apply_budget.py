"""ApplyBudget: committed entries applied in slices, and a busy node keeps its leader."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from pysyncobj import FAIL_REASON
from pysyncobj.monotonic import monotonic as raft_clock

from cluster.raft.apply_budget import ApplyBudget


class FakeSyncObj:
    """The pysyncobj internals ApplyBudget uses; applying an entry takes `cost` seconds."""

    def __init__(self, entries: list[tuple[bytes, int, int]], leader: bool = False,
                 cost: float = 0.0, period: float = 0.05) -> None:
        self._SyncObj__raftLastApplied = 0
        self._SyncObj__raftCommitIndex = len(entries)
        self._SyncObj__commandsWaitingCommit: dict[int, list[tuple[int, Any]]] = {}
        self._SyncObj__conf = SimpleNamespace(appendEntriesPeriod=period, appendEntriesUseBatch=False)
        self._SyncObj__raftState = 2 if leader else 0
        self._SyncObj__raftElectionDeadline = raft_clock() + 10
        self._poller = SimpleNamespace(poll=lambda wait: self.events.append(f"poll {wait}"))
        self.entries, self.cost = entries, cost
        self.events: list[str] = []

    def _isLeader(self) -> bool:  # noqa: N802
        return bool(self._SyncObj__raftState == 2)

    def _SyncObj__getEntries(self, first: int, count: int) -> list[tuple[bytes, int, int]]:  # noqa: N802
        return self.entries[first - 1 : first - 1 + count]

    def _SyncObj__doApplyCommand(self, command: bytes) -> bytes:  # noqa: N802
        time.sleep(self.cost)
        self.events.append(f"apply {command[:1].decode()}")
        return command.upper()

    def _SyncObj__sendAppendEntries(self) -> None:  # noqa: N802
        self.events.append("send")

    def _SyncObj__generateRaftTimeout(self) -> float:  # noqa: N802
        return 1.0

    def _onTick(self, timeToWait: float = 0.0) -> None:  # noqa: N802, N803
        self.events.append(f"tick {timeToWait}")
        self._SyncObj__applyLogEntries()

    def _SyncObj__applyLogEntries(self) -> bool:  # noqa: N802 - pysyncobj's own loop; overridden
        raise AssertionError("ApplyBudget must replace pysyncobj's apply loop")


class Member(ApplyBudget, FakeSyncObj):
    pass


def test_entries_are_applied_in_slices_of_a_heartbeat_period() -> None:
    member = Member([(b"a", 1, 1), (b"b", 2, 1), (b"c", 3, 1), (b"d", 4, 1)], cost=0.03)
    member._onTick(0.02)
    assert member._SyncObj__raftLastApplied == 2  # 0.06 s >= 0.05 s: the rest waits
    member._onTick(0.02)  # entries were left: the tick polls without waiting
    assert member._SyncObj__raftLastApplied == 4
    member._onTick(0.02)
    assert [e for e in member.events if e.startswith("tick")] == ["tick 0.02", "tick 0.0", "tick 0.02"]


def test_subscribers_get_the_outcome_when_their_term_matches() -> None:
    member = Member([(b"a", 1, 2), (b"b", 2, 2)])
    answers: list[tuple[Any, int]] = []
    member._SyncObj__commandsWaitingCommit = {
        1: [(2, lambda r, e: answers.append((r, e)))], 2: [(1, lambda r, e: answers.append((r, e)))]}
    member._onTick()
    assert answers == [(b"A", FAIL_REASON.SUCCESS), (None, FAIL_REASON.DISCARDED)]
    assert member._SyncObj__commandsWaitingCommit == {}


def test_a_follower_busy_applying_restarts_its_election_timer() -> None:
    member = Member([(b"a", 1, 1)], cost=0.06)
    member._onTick()  # the leader's round came 10 s before the timer would run out...
    member._SyncObj__raftElectionDeadline = raft_clock() + 0.01  # ...now it would
    member.entries.append((b"b", 2, 1))
    member._SyncObj__raftCommitIndex = 2
    member._onTick()
    assert member._SyncObj__raftElectionDeadline > raft_clock()


def test_a_follower_reads_its_sockets_before_standing_for_election() -> None:
    member = Member([])
    member._onTick(0.02)
    assert member.events == ["tick 0.02"]  # timer not expired: nothing extra
    member._SyncObj__raftElectionDeadline = raft_clock() - 0.1
    member.events.clear()
    member._onTick(0.02)
    assert member.events == ["poll 0", "tick 0.02"]


def test_log_compaction_starts_its_dump_right_after_the_leaders_round() -> None:
    for leader, expected in ((True, ["send", "dump"]), (False, ["dump"])):
        member = Member([], leader=leader)
        events = member.events
        member.announce_then(lambda *args, seen=events: seen.append("dump"))("tmp", ())
        assert events == expected
