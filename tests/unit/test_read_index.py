"""ReadIndex's rules, on a scripted Raft member (cluster/raft/read_index.py)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from cluster.raft.read_index import ACK, ANSWER, ASK, PROBE, ReadIndex


class FakeRaft:
    def __init__(self, leader: bool = True) -> None:
        self.leader = leader
        self.term = 3
        self.commit = 10
        self.applied = 10
        self.own_entry_committed = True
        self.leader_at: Hashable | None = "self" if leader else "L"
        self.others = ["B", "C"]
        self.sent: list[tuple[Hashable, dict[str, Any]]] = []

    def is_leader(self) -> bool:
        return self.leader

    def current_term(self) -> int:
        return self.term

    def commit_index(self) -> int:
        return self.commit

    def applied_index(self) -> int:
        return self.applied

    def leader_committed_own_entry(self) -> bool:
        return self.own_entry_committed

    def leader_node(self) -> Hashable | None:
        return self.leader_at

    def voters(self) -> Sequence[Hashable]:
        return self.others

    def send(self, node: Hashable, message: dict[str, Any]) -> None:
        self.sent.append((node, message))

    def of_type(self, kind: str) -> list[tuple[Hashable, dict[str, Any]]]:
        return [(n, m) for n, m in self.sent if m["type"] == kind]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def reader(results: list[str | None]):  # type: ignore[no-untyped-def]
    return results.append


def test_the_leader_serves_only_after_a_majority_acks_its_term() -> None:
    raft, results = FakeRaft(), []
    reads = ReadIndex(raft, timeout=5, clock=Clock())
    for _ in range(3):
        reads.request(reader(results))
    reads.on_tick()
    probes = raft.of_type(PROBE)
    assert [n for n, _ in probes] == ["B", "C"] and reads.rounds == 1  # one round for all three
    seq = probes[0][1]["seq"]
    reads.on_message("B", {"type": ACK, "seq": seq, "term": 4})  # B has moved on: not counted
    reads.on_message("C", {"type": ACK, "seq": seq - 1, "term": 3})  # an older round
    reads.on_tick()
    assert results == []
    reads.on_message("C", {"type": ACK, "seq": seq, "term": 3})
    assert results == [None, None, None]


def test_a_confirmed_read_waits_until_the_read_index_is_applied() -> None:
    raft, results = FakeRaft(), []
    raft.applied = 8
    reads = ReadIndex(raft, timeout=5, clock=Clock())
    reads.request(reader(results))
    reads.on_tick()
    reads.on_message("B", {"type": ACK, "seq": 1, "term": 3})
    assert results == []
    raft.applied = 10
    reads.on_tick()
    assert results == [None]


def test_no_round_before_the_leader_committed_an_entry_of_its_term() -> None:
    raft, results = FakeRaft(), []
    raft.own_entry_committed = False
    reads = ReadIndex(raft, timeout=5, clock=Clock())
    reads.request(reader(results))
    reads.on_tick()
    assert raft.of_type(PROBE) == []
    raft.own_entry_committed, raft.commit = True, 12
    reads.on_tick()
    assert raft.of_type(PROBE) and reads._round is not None and reads._round.index == 12


def test_reads_arriving_during_a_round_wait_for_the_next() -> None:
    raft, first, late = FakeRaft(), [], []
    reads = ReadIndex(raft, timeout=5, clock=Clock())
    reads.request(reader(first))
    reads.on_tick()
    reads.request(reader(late))
    reads.on_tick()
    assert reads.rounds == 1
    reads.on_message("B", {"type": ACK, "seq": 1, "term": 3})
    assert first == [None] and late == [] and reads.rounds == 2
    reads.on_message("C", {"type": ACK, "seq": 2, "term": 3})
    assert late == [None]


def test_a_leader_that_steps_down_fails_its_reads() -> None:
    raft, results = FakeRaft(), []
    reads = ReadIndex(raft, timeout=5, clock=Clock())
    reads.request(reader(results))
    reads.on_message("F", {"type": ASK, "id": 7})
    reads.on_tick()
    raft.leader, raft.leader_at = False, None
    reads.on_tick()
    assert len(results) == 1 and results[0] is not None
    assert [m.get("error") is not None for _, m in raft.of_type(ANSWER)] == [True]


def test_a_follower_asks_the_leader_once_and_serves_after_applying() -> None:
    raft, results = FakeRaft(leader=False), []
    raft.applied = 5
    reads = ReadIndex(raft, timeout=5, clock=Clock())
    for _ in range(4):
        reads.request(reader(results))
    reads.on_tick()
    reads.request(reader(results))  # while the question is out: asked next
    reads.on_tick()
    questions = raft.of_type(ASK)
    assert len(questions) == 1 and questions[0][0] == "L"
    reads.on_message("L", {"type": ANSWER, "id": questions[0][1]["id"], "index": 9})
    assert results == []
    raft.applied = 9
    reads.on_tick()
    assert results == [None] * 4 and len(raft.of_type(ASK)) == 2


def test_a_follower_asks_the_new_leader_after_a_change() -> None:
    raft, results = FakeRaft(leader=False), []
    reads = ReadIndex(raft, timeout=5, clock=Clock())
    reads.request(reader(results))
    reads.on_tick()
    raft.leader_at = "M"
    reads.on_tick()
    assert [n for n, _ in raft.of_type(ASK)] == ["L", "M"]


def test_a_follower_answers_probes_with_its_own_term() -> None:
    raft = FakeRaft(leader=False)
    raft.term = 5
    reads = ReadIndex(raft, timeout=5, clock=Clock())
    reads.on_message("L", {"type": PROBE, "term": 4, "seq": 2})
    assert raft.of_type(ACK) == [("L", {"type": ACK, "seq": 2, "term": 5})]


def test_readers_past_their_deadline_are_forgotten() -> None:
    raft, clock, results = FakeRaft(), Clock(), []
    raft.own_entry_committed = False
    reads = ReadIndex(raft, timeout=1, clock=clock)
    reads.request(reader(results))
    reads.on_tick()
    clock.now += 2
    reads.on_tick()
    assert reads._pending == []
