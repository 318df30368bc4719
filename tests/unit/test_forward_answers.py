"""A follower's high-lane writes answered with the leader's outcome (cluster/raft/forward_answers.py):
the leader answers exactly the entries a follower waits for, in log order; the follower passes
on the first of its two answers only, and its own apply still answers when the leader's
message is missing or unreadable."""

from __future__ import annotations

import pickle
from typing import Any

from pysyncobj import FAIL_REASON

from cluster.bench.workloads import MACHINE, REGISTER_MACHINE
from cluster.core.engine import apply
from cluster.core.entries import Entry, PutMachine, Transition
from cluster.core.outcome import Outcome
from cluster.core.state import ClusterState
from cluster.raft.forward_answers import (
    FORWARD_RESULT,
    LAYOUT,
    MAX_WAITING,
    LeaderAnswers,
    without_events,
)
from cluster.raft.log_gate import HighForwarder
from tests.unit.test_log_gate import FakeMember


def applied_put(value: str) -> Outcome:
    state = ClusterState()
    apply(state, Entry(PutMachine(MACHINE, REGISTER_MACHINE), at_ms=1, index=1))
    apply(state, Entry(Transition(MACHINE, "k", "create"), at_ms=2, index=2))
    return apply(state, Entry(Transition(MACHINE, "k", "put", {"value": value}), at_ms=3, index=3))


class Sent:
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, node: str, message: dict[str, Any]) -> None:
        self.messages.append((node, message))

    def outcomes(self) -> list[tuple[str, int, Any]]:
        return [(node, m["request_id"], pickle.loads(m["outcome"])) for node, m in self.messages
                if m["type"] == FORWARD_RESULT]


def test_the_leader_answers_the_entries_followers_wait_for_in_log_order() -> None:
    answers, sent = LeaderAnswers(), Sent()
    first, second = applied_put("a"), applied_put("b")
    answers.expect(b"renewal", "f1", 7)
    answers.expect(b"renewal", "f2", 8)  # equal bytes: answered in the order they were logged
    assert answers
    answers.applied(b"bulk", Outcome("ok"), sent)  # nobody waits for it
    answers.applied(b"renewal", first, sent)
    answers.applied(b"renewal", second, sent)
    answers.applied(b"renewal", first, sent)  # equal bytes applied again: nobody waits any more
    assert not answers
    assert [(node, rid) for node, rid, _ in sent.outcomes()] == [("f1", 7), ("f2", 8)]
    _, _, outcome = sent.outcomes()[0]
    # the answer renders as the leader's own (full and minimal); the feed's events stay home
    assert first.events and outcome.events == ()
    assert outcome.rendered() == first.rendered()
    assert outcome.rendered(summary=True) == first.rendered(summary=True)


def test_a_leader_that_lost_leadership_leaves_the_answers_to_the_followers() -> None:
    answers, sent = LeaderAnswers(), Sent()
    answers.expect(b"renewal", "f1", 7)
    answers.clear()
    answers.applied(b"renewal", applied_put("a"), sent)
    assert sent.messages == [] and not answers


def test_the_leader_remembers_a_bounded_number_of_forwarded_commands() -> None:
    """The oldest are forgotten (their followers' own applies answer them), so commands that
    never reach the log (pysyncobj's queue full) cannot stop the early answers."""
    answers, sent = LeaderAnswers(), Sent()
    for i in range(MAX_WAITING + 10):
        answers.expect(b"c%d" % i, "f1", i)
    for i in range(MAX_WAITING + 10):
        answers.applied(b"c%d" % i, Outcome("ok"), sent)
    assert [rid for _, rid, _ in sent.outcomes()] == list(range(10, MAX_WAITING + 10))
    assert not answers


def test_a_groups_outcomes_travel_without_their_events() -> None:
    put = applied_put("a")
    assert [o.events for o in without_events([put, put])] == [(), ()]
    assert without_events(None) is None  # an entry pysyncobj skipped


def forwarded(member: FakeMember, forwarder: HighForwarder) -> list[tuple[Any, int]]:
    """One high-lane command forwarded to the leader; returns the list its callback fills."""
    got: list[tuple[Any, int]] = []
    member._SyncObj__raftLeader = "leader"
    forwarder.put(b"\x00renewal", lambda result, error: got.append((result, error)))
    forwarder.flush(member, lambda c, cb: None)
    return got


def result_message(request_id: int, outcome: Any) -> dict[str, Any]:
    sent = Sent()
    answers = LeaderAnswers()
    answers.expect(b"x", "f", request_id)
    answers.applied(b"x", outcome, sent)
    return sent.messages[0][1]


def test_the_follower_answers_with_the_first_of_its_two_answers() -> None:
    member, forwarder = FakeMember(), HighForwarder()
    leaders, own = applied_put("leader's"), applied_put("own")
    got = forwarded(member, forwarder)
    (request_id, own_path), = member._SyncObj__commandsWaitingReply.items()
    forwarder.answered(result_message(request_id, leaders))
    own_path(own, FAIL_REASON.SUCCESS)  # pysyncobj's path: the follower applied it too
    assert [(r.rendered(), e) for r, e in got] == [(leaders.rendered(), FAIL_REASON.SUCCESS)]
    assert forwarder.answered_early == 1

    got = forwarded(member, forwarder)  # now the follower's own apply comes first
    request_id = max(member._SyncObj__commandsWaitingReply)
    member._SyncObj__commandsWaitingReply[request_id](own, FAIL_REASON.SUCCESS)
    forwarder.answered(result_message(request_id, leaders))
    assert [r for r, _ in got] == [own] and forwarder.answered_early == 1


def test_the_followers_own_apply_answers_when_the_leaders_message_cannot_be_read() -> None:
    member, forwarder = FakeMember(), HighForwarder()
    got = forwarded(member, forwarder)
    request_id = max(member._SyncObj__commandsWaitingReply)
    forwarder.answered({"type": FORWARD_RESULT, "request_id": request_id, "layout": LAYOUT,
                        "outcome": b"junk"})
    forwarder.answered({"type": FORWARD_RESULT, "request_id": request_id + 1,  # not ours
                        "layout": LAYOUT, "outcome": pickle.dumps(Outcome("ok"))})
    # a leader whose outcome classes differ (a rolling upgrade): its pickle may not mean ours
    forwarder.answered({**result_message(request_id, Outcome("ok")), "layout": "another"})
    assert got == [] and forwarder.answered_early == 0
    member._SyncObj__commandsWaitingReply[request_id](Outcome("ok"), FAIL_REASON.SUCCESS)
    assert got == [(Outcome("ok"), FAIL_REASON.SUCCESS)]


def test_an_answered_command_is_forgotten_whichever_answer_came() -> None:
    member, forwarder = FakeMember(), HighForwarder()
    got = forwarded(member, forwarder)
    request_id = max(member._SyncObj__commandsWaitingReply)
    # e.g. pysyncobj failing the command on a leader change, before the leader's answer
    member._SyncObj__commandsWaitingReply[request_id](None, FAIL_REASON.LEADER_CHANGED)
    forwarder.answered(result_message(request_id, Outcome("ok")))
    assert got == [(None, FAIL_REASON.LEADER_CHANGED)] and forwarder._pending == {}
