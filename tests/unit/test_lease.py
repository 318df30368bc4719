"""Leader stickiness and the read lease (cluster/raft/lease.py), on scripted members."""

from __future__ import annotations

import inspect
import time
from collections.abc import Hashable

from cluster.raft.lease import RELEASE, Lease, Stickiness, lease_clock, lease_seconds
from cluster.raft.read_index import ACK, ANSWER, ASK, PROBE, ReadIndex
from tests.unit.test_read_index import Clock, FakeRaft, reader

MIN_TIMEOUT = 1.0


class FakeMember:
    """A follower of "L" in term 3, as stickiness sees it."""

    def __init__(self) -> None:
        self.term = 3
        self.leader: Hashable | None = "L"
        self.leading = False
        self.deferred = 0.0  # the longest election deferral asked for
        self.transfer = False

    def current_term(self) -> int:
        return self.term

    def leader_node(self) -> Hashable | None:
        return self.leader

    def is_leader(self) -> bool:
        return self.leading

    def follows(self, node: Hashable) -> bool:
        return not self.leading and self.leader == node

    def defer_election(self, seconds: float) -> bool:
        if self.transfer:
            return False
        self.deferred = max(self.deferred, seconds)
        return True


def sticky(clock: Clock, enabled: bool = True) -> tuple[Stickiness, FakeMember, Lease]:
    member, lease = FakeMember(), Lease(MIN_TIMEOUT, clock=clock)
    s = Stickiness(member, lease, MIN_TIMEOUT, enabled=enabled, clock=clock)
    clock.now += 5  # past the start-up quiet period
    return s, member, lease


def vote(term: int) -> dict[str, object]:
    return {"type": "request_vote", "term": term, "last_log_index": 9, "last_log_term": 3}


def test_a_follower_that_heard_its_leader_ignores_votes_until_the_minimum_timeout() -> None:
    clock = Clock()
    s, _member, _lease = sticky(clock)
    assert s.on_message("L", {"type": "append_entries", "term": 3}) is False
    clock.now += 0.9
    assert s.on_message("B", vote(4)) is True and s.votes_ignored == 1
    clock.now += 0.2
    assert s.on_message("B", vote(4)) is False  # 1.1 s without the leader: B may be elected


def test_a_promise_defers_the_followers_own_election_and_counts_as_hearing() -> None:
    clock = Clock()
    s, member, _lease = sticky(clock)
    assert s.promise("L", 3) is True and member.deferred == MIN_TIMEOUT
    assert s.on_message("B", vote(4)) is True
    assert s.promise("X", 3) is False  # not our leader
    assert s.promise("L", 2) is False  # not our term
    member.transfer = True
    assert s.promise("L", 3) is False  # asked to stand for election: no promise


def test_a_hand_over_lets_followers_vote_for_the_next_term_only() -> None:
    clock = Clock()
    s, _member, _lease = sticky(clock)
    s.on_message("L", {"type": "append_entries", "term": 3})
    s.on_message("X", {"type": RELEASE, "term": 3})  # not from our leader: ignored
    assert s.on_message("T", vote(4)) is True
    s.on_message("L", {"type": RELEASE, "term": 3})
    assert s.on_message("T", vote(5)) is True
    assert s.on_message("T", vote(4)) is False


def test_our_own_leader_standing_again_is_not_ignored() -> None:
    clock = Clock()
    s, _member, _lease = sticky(clock)
    s.on_message("L", {"type": "append_entries", "term": 3})
    assert s.on_message("B", vote(4)) is True
    assert s.on_message("L", vote(4)) is False  # it stepped down (and dropped its lease) first


def test_nobody_is_sticky_when_disabled_on_the_leader_or_without_a_leader() -> None:
    clock = Clock()
    s, member, _lease = sticky(clock, enabled=False)
    s.on_message("L", {"type": "append_entries", "term": 3})
    assert s.on_message("B", vote(4)) is False and s.promise("L", 3) is False
    s, member, _lease = sticky(clock)
    s.on_message("L", {"type": "append_entries", "term": 3})
    member.leader = None
    assert s.on_message("B", vote(4)) is False
    member.leader, member.leading = "self", True
    assert s.on_message("B", vote(4)) is False


def test_a_node_ignores_votes_for_the_first_minimum_timeout_after_it_starts() -> None:
    clock = Clock()
    member, lease = FakeMember(), Lease(MIN_TIMEOUT, clock=clock)
    member.leader = None
    s = Stickiness(member, lease, MIN_TIMEOUT, clock=clock)
    assert s.on_message("B", vote(4)) is True
    clock.now += MIN_TIMEOUT
    assert s.on_message("B", vote(4)) is False


def test_the_lease_is_dropped_before_a_higher_term_is_taken() -> None:
    clock = Clock()
    s, member, lease = sticky(clock)
    member.leading, member.leader = True, "self"
    lease.extend(3, clock.now)
    assert lease.holds(3, clock.now)
    assert s.on_message("B", vote(3)) is False and lease.holds(3, clock.now)  # same term: kept
    assert s.on_message("B", vote(4)) is False and not lease.holds(3, clock.now)
    lease.extend(3, clock.now - 0.01)  # a round sent before the drop does not count
    assert not lease.holds(3, clock.now)


def test_the_lease_runs_from_the_round_sent_minus_drift_and_margin() -> None:
    clock = Clock()
    lease = Lease(MIN_TIMEOUT, clock=clock)
    sent = clock.now
    lease.extend(3, sent)
    assert lease_seconds(MIN_TIMEOUT) == MIN_TIMEOUT * 0.9 - 0.05
    assert lease.holds(3, sent + lease.seconds - 0.001) and not lease.holds(3, sent + lease.seconds)
    assert not lease.holds(4, sent)  # another term
    lease.block(3)
    lease.extend(3, clock.now + 1)
    assert not lease.holds(3, clock.now + 1)  # handed over: nothing for the rest of the term
    lease.extend(4, clock.now + 1)
    assert lease.holds(4, clock.now + 1)


def leased(raft: FakeRaft, clock: Clock) -> tuple[ReadIndex, Lease]:
    lease = Lease(MIN_TIMEOUT, clock=clock)
    return ReadIndex(raft, timeout=5, clock=clock, lease=lease, renew_every=0.1), lease


def test_only_a_majority_of_promises_gives_the_leader_a_lease() -> None:
    raft, clock = FakeRaft(), Clock()
    reads, lease = leased(raft, clock)
    reads.on_tick()  # idle: an empty round keeps the lease warm
    assert reads.lease_rounds == 1 and reads.rounds == 0
    reads.on_message("B", {"type": ACK, "seq": 1, "term": 3})  # confirmed, but no promise
    assert not lease.holds(3, clock.now)
    clock.now += 0.2
    reads.on_tick()
    reads.on_message("B", {"type": ACK, "seq": 2, "term": 3, "sticky": True})
    assert lease.holds(3, clock.now) and lease.published[1] == clock.now + lease.seconds


def test_under_the_lease_reads_and_questions_are_confirmed_without_a_round() -> None:
    raft, clock = FakeRaft(), Clock()
    reads, lease = leased(raft, clock)
    lease.extend(3, clock.now)
    raft.applied = 9
    assert reads.lease_read() is False  # the commit index is not applied yet
    results: list[str | None] = []
    reads.request(reader(results))
    reads.on_message("F", {"type": ASK, "id": 4})
    assert [m["index"] for _, m in raft.of_type(ANSWER)] == [10]
    reads.on_tick()
    assert results == [] and reads.rounds == 0  # confirmed at once, waits to apply
    raft.applied = 10
    reads.on_tick()
    assert results == [None] and reads.lease_read() is True
    raft.leader = False
    assert reads.lease_read() is False
    reads.on_tick()  # stepped down: the lease is gone
    assert not lease.holds(3, clock.now)


def test_a_follower_acks_with_a_promise_only_when_stickiness_agrees() -> None:
    raft, clock = FakeRaft(leader=False), Clock()
    promised: list[tuple[Hashable, int]] = []

    def promise(node: Hashable, term: int) -> bool:
        promised.append((node, term))
        return node == "L"

    reads = ReadIndex(raft, timeout=5, clock=clock, promise=promise)
    reads.on_message("L", {"type": PROBE, "term": 3, "seq": 1})
    reads.on_message("X", {"type": PROBE, "term": 3, "seq": 1})
    acks = raft.of_type(ACK)
    assert [m.get("sticky") for _, m in acks] == [True, None] and promised == [("L", 3), ("X", 3)]


def test_the_lease_counts_the_time_the_machine_was_suspended(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Leases and promises run on CLOCK_BOOTTIME: a leader suspended past its lease wakes without it
    (the monotonic clock stops during a suspend and would let it serve stale reads). No test can
    suspend the machine, so this checks which clock they read: on a machine that never slept the
    two clocks agree, and only the clock's id tells them apart."""
    assert Lease(MIN_TIMEOUT).clock is lease_clock
    assert Stickiness(FakeMember(), Lease(MIN_TIMEOUT), MIN_TIMEOUT).clock is lease_clock
    assert inspect.signature(ReadIndex).parameters["clock"].default is lease_clock
    asked: list[int] = []
    monkeypatch.setattr(time, "clock_gettime", lambda clock_id: asked.append(clock_id) or 0.0)
    lease_clock()
    assert asked == [time.CLOCK_BOOTTIME]
