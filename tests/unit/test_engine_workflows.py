"""Votes, tasks, follows/restart, then-chains, emit, batches and idempotency in the pure engine."""

from __future__ import annotations

import pytest

from cluster.core.entries import Batch, RetryTasks, TaskReport, Transition, Vote, Withdraw

from .engine_driver import LOCK, T0, Driver

APPROVAL = """
machine: approval
states:
  draft: {}
  approved: {terminal: true}
  rejected: {terminal: true}
transitions:
  create: {from: null, to: draft}
  approve:
    from: draft
    to: approved
    votes: {voters: [alice, bob, carol], quorum: 2, timeout: 10m}
  reject: {from: draft, to: rejected}
"""

DEPLOY = """
machine: deploy
states:
  provision:
    tasks: [{name: ssl-cert, executor: lambda}, {name: db-setup}]
  running: {}
  teardown:
    tasks: [{name: drop-db}]
  destroyed: {terminal: true, remove: true}
transitions:
  launch: {from: null, to: provision}
  next:
    - {from: provision, to: running}
    - {from: teardown, to: destroyed}
  destroy: {from: running, to: teardown}
"""

TASK = """
machine: task
states:
  created: {}
  started: {}
  done: {terminal: true}
transitions:
  create: {from: null, to: created}
  assign:
    from: [created]
    requires: [assignee]
    follows: {none_of: [assign]}
  schedule:
    from: [created]
    requires: [deadline]
    follows: {none_of: [schedule]}
  start:
    from: created
    to: started
    follows: {all_of: [assign, schedule]}
  revise: {from: [created, started], to: created, restart: true}
  complete: {from: started, to: done}
"""

CHAIN = """
machine: order
states:
  new: {}
  paid: {}
  shipped: {}
transitions:
  create: {from: null, to: new}
  pay:
    from: new
    to: paid
    emit: order-paid
    then:
      - {transition: ship, if: {$src: {express: {const: true}}}}
  ship: {from: paid, to: shipped}
"""


@pytest.fixture
def d() -> Driver:
    driver = Driver()
    for name, source in {
        "approval": APPROVAL,
        "deploy": DEPLOY,
        "task": TASK,
        "order": CHAIN,
        "lock": LOCK,
    }.items():
        driver.machine(name, source)
    return driver


def propose(d: Driver) -> str:
    d.move("approval", "doc", "create")
    pending = d.move("approval", "doc", "approve", {"note": "ship it"})
    assert pending.status == "pending"
    assert pending.body["object"]["version"] == 1  # proposing does not apply anything
    return pending.body["pending"]["change"]


def test_a_voted_transition_applies_when_approvals_reach_the_quorum(d: Driver) -> None:
    change = propose(d)
    first = d.run(Vote("approval", "doc", "alice", True, change))
    assert first.body["outcome"] == "pending"
    assert d.run(Vote("approval", "doc", "alice", True, change)).body["outcome"] == "pending"
    second = d.run(Vote("approval", "doc", "bob", True, change))
    assert second.status == "applied" and second.body["outcome"] == "applied"
    doc = d.obj("approval", "doc")
    assert doc["state"] == "approved" and doc["version"] == 2 and doc["pending"] is None


def test_rejections_that_make_the_quorum_unreachable_reject_the_change(d: Driver) -> None:
    change = propose(d)
    d.run(Vote("approval", "doc", "alice", False, change))
    outcome = d.run(Vote("approval", "doc", "bob", False, change))
    assert outcome.body["outcome"] == "rejected"
    doc = d.obj("approval", "doc")
    assert doc["state"] == "draft" and doc["pending"] is None and doc["version"] == 1


def test_vote_errors(d: Driver) -> None:
    change = propose(d)
    d.run(Vote("approval", "doc", "alice", True, change))
    codes = [
        d.run(Vote("approval", "doc", "alice", False, change)).error.code,  # type: ignore[union-attr]
        d.run(Vote("approval", "doc", "mallory", True, change)).error.code,  # type: ignore[union-attr]
        d.run(Vote("approval", "doc", "bob", True, "0" * 32)).error.code,  # type: ignore[union-attr]
    ]
    assert codes == ["vote_conflict", "not_a_voter", "stale_change"]


def test_a_pending_change_blocks_other_transitions_until_withdrawn(d: Driver) -> None:
    propose(d)
    blocked = d.move("approval", "doc", "reject")
    assert blocked.error is not None and blocked.error.code == "pending_change"
    assert d.run(Withdraw("approval", "doc")).body["outcome"] == "withdrawn"
    assert d.move("approval", "doc", "reject").status == "applied"


def test_a_pending_change_expires_at_its_deadline(d: Driver) -> None:
    change = propose(d)
    d.tick(T0 + 10 * 60_000)
    doc = d.obj("approval", "doc")
    assert doc["pending"] is None and doc["state"] == "draft"
    assert d.state.history("approval", "doc", 1)[0]["kind"] == "expired"
    late = d.run(Vote("approval", "doc", "alice", True, change))
    assert late.error is not None and late.error.code == "stale_change"


def test_tasks_are_issued_on_entry_and_next_fires_when_all_complete(d: Driver) -> None:
    launched = d.move("deploy", "master", "launch", {"image": "e724e9"})
    assert [t["status"] for t in launched.body["object"]["tasks"]] == ["pending", "pending"]
    assert launched.body["object"]["tasks"][0]["config"] == {"executor": "lambda"}
    assert [t["name"] for t in d.state.tasks(status="pending")] == ["ssl-cert", "db-setup"]
    failed = d.run(TaskReport("deploy", "master", "ssl-cert", "failed", error="quota"))
    assert failed.body["task"]["status"] == "failed"
    retried = d.run(RetryTasks("deploy", "master", "failed"))
    assert retried.body["retried"] == ["ssl-cert"]
    assert d.obj("deploy", "master")["tasks"][0]["attempts"] == 2
    d.run(TaskReport("deploy", "master", "ssl-cert", "completed", data={"cert": "arn:1"}))
    done = d.run(TaskReport("deploy", "master", "db-setup", "completed"))
    assert done.status == "applied"
    stack = d.obj("deploy", "master")
    assert stack["state"] == "running" and stack["tasks"] == []
    assert stack["data"] == {"image": "e724e9", "cert": "arn:1"}


def test_next_picks_the_candidate_for_the_current_state(d: Driver) -> None:
    d.move("deploy", "s", "launch")
    d.run(TaskReport("deploy", "s", "ssl-cert", "completed"))
    d.run(TaskReport("deploy", "s", "db-setup", "completed"))
    d.move("deploy", "s", "destroy")
    d.run(TaskReport("deploy", "s", "drop-db", "completed"))
    assert d.obj("deploy", "s") is None  # destroyed is terminal and removing


def test_reporting_an_unknown_task_is_not_found(d: Driver) -> None:
    d.move("deploy", "s", "launch")
    refused = d.run(TaskReport("deploy", "s", "nope", "completed"))
    assert refused.error is not None and refused.error.code == "not_found"
    assert "ssl-cert, db-setup" in refused.error.message


def test_follows_requires_assign_and_schedule_before_start(d: Driver) -> None:
    d.move("task", "t1", "create")
    early = d.move("task", "t1", "start")
    assert early.error is not None and early.error.code == "transition_not_allowed"
    d.move("task", "t1", "assign", {"assignee": "ann"})
    twice = d.move("task", "t1", "assign", {"assignee": "bob"})
    assert twice.error is not None and twice.error.code == "transition_not_allowed"
    missing = d.move("task", "t1", "schedule", {})
    assert missing.error is not None and missing.error.code == "guard_failed"
    d.move("task", "t1", "schedule", {"deadline": "2026-12-01"})
    assert d.move("task", "t1", "start").body["object"]["state"] == "started"


def test_restart_clears_what_follows_sees_and_bumps_generation(d: Driver) -> None:
    d.move("task", "t1", "create")
    d.move("task", "t1", "assign", {"assignee": "ann"})
    d.move("task", "t1", "schedule", {"deadline": "x"})
    d.move("task", "t1", "start")
    revised = d.move("task", "t1", "revise")
    assert revised.body["object"]["generation"] == 2
    assert d.move("task", "t1", "assign", {"assignee": "bob"}).ok
    early = d.move("task", "t1", "start")
    assert early.error is not None and early.error.code == "transition_not_allowed"


def test_then_chains_in_the_same_entry_when_its_condition_holds(d: Driver) -> None:
    d.move("order", "o1", "create", {"express": True})
    paid = d.move("order", "o1", "pay")
    assert paid.body["object"]["state"] == "shipped" and paid.body["object"]["version"] == 3
    kinds = [e["kind"] for e in paid.events]
    assert kinds == ["transition", "emitted", "transition"]
    assert paid.events[1]["event"] == "order-paid"
    d.move("order", "o2", "create", {"express": False})
    assert d.move("order", "o2", "pay").body["object"]["state"] == "paid"


def test_non_atomic_batch_applies_what_it_can(d: Driver) -> None:
    outcome = d.run(
        Batch(
            (
                Transition("lock", "a", "create"),
                Transition("lock", "a", "create"),
                Transition("lock", "b", "create"),
            )
        )
    )
    assert [r.status for r in outcome.results] == ["created", "rejected", "created"]
    assert outcome.results[1].error.code == "object_exists"  # type: ignore[union-attr]
    assert d.obj("lock", "b") is not None


def test_atomic_batch_is_all_or_nothing(d: Driver) -> None:
    before = d.snapshot()
    outcome = d.run(
        Batch(
            (
                Transition("lock", "a", "create"),
                Transition("lock", "a", "acquire", {}),
                Transition("lock", "b", "create"),
            ),
            atomic=True,
        )
    )
    assert outcome.status == "rejected"
    assert [r.error.code for r in outcome.results] == ["aborted", "guard_failed", "aborted"]  # type: ignore[union-attr]
    assert d.snapshot() == before


def test_batch_operations_see_the_earlier_ones(d: Driver) -> None:
    ops = (Transition("lock", "a", "create"), Transition("lock", "a", "acquire", {"owner": "w"}, 1))
    outcome = d.run(Batch(ops, atomic=True))
    assert [r.status for r in outcome.results] == ["created", "applied"]


def test_idempotency_key_replays_the_original_result(d: Driver) -> None:
    first = d.move("lock", "a", "create", key="k1")
    replay = d.move("lock", "a", "create", key="k1")
    assert replay.status == "created" and replay.body == first.body
    assert d.obj("lock", "a")["version"] == 1


def test_idempotency_key_reused_for_another_request_is_refused(d: Driver) -> None:
    d.move("lock", "a", "create", key="k1")
    refused = d.move("lock", "b", "create", key="k1")
    assert refused.error is not None and refused.error.code == "idempotency_key_reused"


def test_idempotency_keys_are_forgotten_after_the_window(d: Driver) -> None:
    d.move("lock", "a", "create", key="k1")
    d.now = T0 + 11 * 60_000
    d.move("lock", "b", "create", key="k2")  # evicts k1
    assert "k1" not in d.state.idempotency
    assert d.move("lock", "a", "create", key="k1").error.code == "object_exists"  # type: ignore[union-attr]


def test_the_deciding_vote_is_an_event_with_the_voter_and_tally_before_the_move(d: Driver) -> None:
    change = propose(d)
    d.run(Vote("approval", "doc", "alice", True, change))
    second = d.run(Vote("approval", "doc", "bob", True, change))
    vote, move = second.events[0], second.events[1]
    assert (vote["kind"], vote["outcome"], vote["voter"], vote["approve"]) == ("vote", "approved", "bob", True)
    assert vote["tally"] == {"approve": 2, "reject": 0, "required": 2}
    assert (move["kind"], move["transition"], move["to"]) == ("transition", "approve", "approved")
    assert all(e["index"] == second.events[0]["index"] for e in second.events)


def test_task_events_say_issued_and_retried_with_attempts(d: Driver) -> None:
    launched = d.move("deploy", "s", "launch")
    issued = [(e["task"], e["status"]) for e in launched.events if e["kind"] == "task"]
    assert issued == [("ssl-cert", "issued"), ("db-setup", "issued")]
    d.run(TaskReport("deploy", "s", "ssl-cert", "failed", error="quota"))
    retried = d.run(RetryTasks("deploy", "s", "failed"))
    assert [(e["task"], e["status"], e["attempts"]) for e in retried.events] == [("ssl-cert", "retried", 2)]
