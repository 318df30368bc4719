"""Wrong answers hostile or careless use could get from the engine (issue 17, items 9-12)."""

from __future__ import annotations

import pytest

from cluster.core.entries import DeleteObject, TaskReport, Vote, Withdraw

from .engine_driver import T0, Driver

VOTED_THEN = """
machine: vt
states:
  draft: {}
  review: {}
  approved: {terminal: true}
transitions:
  create: {from: null, to: draft}
  submit: {from: draft, to: review, then: [{transition: approve}]}
  approve:
    from: review
    to: approved
    votes: {voters: [alice, bob], quorum: 2}
"""

VOTED_NEXT = """
machine: vn
states:
  build:
    tasks: [{name: compile}]
  released: {terminal: true}
transitions:
  start: {from: null, to: build}
  next:
    from: build
    to: released
    votes: {voters: [alice], quorum: 1}
"""

VOTED_TIMEOUT = """
machine: vto
states:
  waiting: {timeout: {after: 10s, transition: escalate}}
  escalated: {}
transitions:
  create: {from: null, to: waiting}
  escalate:
    from: waiting
    to: escalated
    votes: {voters: [alice], quorum: 1}
"""

TIMED = """
machine: timed
states:
  waiting: {timeout: {after: 10s, transition: expire}}
  expired: {}
transitions:
  create: {from: null, to: waiting}
  expire: {from: waiting, to: expired}
"""

APPROVAL = """
machine: approval
states:
  draft: {}
  approved: {terminal: true}
transitions:
  create: {from: null, to: draft}
  approve:
    from: draft
    to: approved
    votes: {voters: [alice, bob, carol], quorum: 2, timeout: 10m}
"""


@pytest.fixture
def d() -> Driver:
    driver = Driver()
    for name, source in [("vt", VOTED_THEN), ("vn", VOTED_NEXT), ("vto", VOTED_TIMEOUT),
                         ("timed", TIMED), ("approval", APPROVAL)]:
        driver.machine(name, source)
    return driver


# -- item 9: a voted transition never applies without its votes --------------------------


def test_a_then_step_into_a_voted_transition_becomes_a_pending_change(d: Driver) -> None:
    d.move("vt", "doc", "create")
    outcome = d.move("vt", "doc", "submit")
    assert outcome.ok, outcome.error
    obj = d.obj("vt", "doc")
    assert obj is not None
    assert obj["state"] == "review"  # `submit` applied; `approve` waits for alice and bob
    assert obj["pending"]["transition"] == "approve"
    change = obj["pending"]["change"]
    assert d.run(Vote("vt", "doc", "alice", True, change)).body["outcome"] == "pending"
    assert d.run(Vote("vt", "doc", "bob", True, change)).status == "applied"
    assert d.obj("vt", "doc")["state"] == "approved"  # type: ignore[index]


def test_a_voted_next_waits_for_its_votes_when_the_tasks_complete(d: Driver) -> None:
    d.move("vn", "r1", "start")
    outcome = d.run(TaskReport("vn", "r1", "compile", "completed", data={"build": 7}))
    assert outcome.status == "pending", outcome
    obj = d.obj("vn", "r1")
    assert obj is not None and obj["state"] == "build"
    assert obj["pending"]["transition"] == "next"
    assert obj["pending"]["data"] == {"build": 7}
    assert d.run(Vote("vn", "r1", "alice", True, obj["pending"]["change"])).status == "applied"
    assert d.obj("vn", "r1")["state"] == "released"  # type: ignore[index]


def test_a_voted_timeout_transition_is_proposed_not_applied(d: Driver) -> None:
    d.move("vto", "t1", "create")
    assert d.tick(T0 + 10_000).body["fired"] == 1
    obj = d.obj("vto", "t1")
    assert obj is not None and obj["state"] == "waiting"
    assert obj["pending"]["transition"] == "escalate"


# -- item 10: a deadline never fires on a later incarnation ------------------------------


def test_a_recreated_object_does_not_time_out_at_the_old_objects_deadline(d: Driver) -> None:
    d.move("timed", "x", "create")  # deadline T0 + 10 s
    d.now = T0 + 1_000
    assert d.run(DeleteObject("timed", "x")).ok
    d.now = T0 + 5_000
    d.move("timed", "x", "create")  # version 1 again; its deadline is T0 + 15 s
    d.tick(T0 + 11_000)
    assert d.obj("timed", "x")["state"] == "waiting"  # type: ignore[index]
    d.tick(T0 + 15_000)
    assert d.obj("timed", "x")["state"] == "expired"  # type: ignore[index]


def test_a_change_proposed_again_expires_at_its_own_deadline(d: Driver) -> None:
    d.move("approval", "doc", "create")
    first = d.move("approval", "doc", "approve").body["pending"]["change"]  # expires T0 + 10 m
    d.now = T0 + 60_000
    assert d.run(Withdraw("approval", "doc")).ok
    d.now = T0 + 300_000
    again = d.move("approval", "doc", "approve").body["pending"]  # expires T0 + 15 m
    d.tick(T0 + 600_001)
    obj = d.obj("approval", "doc")
    assert obj is not None and obj["pending"] is not None, "expired at the first proposal's deadline"
    assert obj["pending"]["change"] == again["change"]
    # a vote meant for the withdrawn proposal is not counted for the new one
    stale = d.run(Vote("approval", "doc", "alice", True, first))
    assert stale.error is not None and stale.error.code == "stale_change"
    d.tick(T0 + 900_000)
    assert d.obj("approval", "doc")["pending"] is None  # type: ignore[index]


# -- item 11: a fencing token (the version) never goes backwards for an id ---------------


def _lock(d: Driver) -> None:
    from .engine_driver import LOCK

    d.machine("lock", LOCK)


def test_a_recreated_lock_continues_above_its_last_token(d: Driver) -> None:
    _lock(d)
    d.move("lock", "db-1", "create")
    d.move("lock", "db-1", "acquire", {"owner": "w1"})
    d.move("lock", "db-1", "release", {"owner": "w1"})
    held = d.move("lock", "db-1", "acquire", {"owner": "w1"})
    token = held.body["object"]["version"]
    assert token == 4
    assert d.run(DeleteObject("lock", "db-1")).ok
    assert d.move("lock", "db-1", "create").body["object"]["version"] == 5
    again = d.move("lock", "db-1", "acquire", {"owner": "w2"})
    assert again.body["object"]["version"] > token  # 6: the stale holder's 4 loses


def test_tombstones_survive_a_snapshot_and_are_bounded(d: Driver) -> None:
    from cluster.core import codec

    _lock(d)
    d.state.max_tombstones = 2
    for name in ("a", "b", "c"):
        d.move("lock", name, "create")
        d.move("lock", name, "acquire", {"owner": "w1"})
        d.run(DeleteObject("lock", name))
    # "a" was forgotten first: its version went into the machine's floor
    assert sorted(d.state.tombstones) == [("lock", "b"), ("lock", "c")]
    assert d.state.version_floors == {"lock": 2}
    d.state = codec.loads(codec.dumps(d.state))
    for name in ("a", "b", "c", "never-used"):
        assert d.move("lock", name, "create").body["object"]["version"] == 3, name
    assert d.state.tombstones == {}  # a created id carries its version itself again


def test_a_rejected_entry_leaves_no_tombstone(d: Driver) -> None:
    from cluster.core import codec

    _lock(d)
    d.move("lock", "x", "create")
    before = codec.dumps(d.state)
    assert not d.run(DeleteObject("lock", "nope")).ok
    assert codec.dumps(d.state) == before


# -- item 12: an Idempotency-Key is never forgotten before its window ---------------------


def test_keyed_writes_beyond_capacity_are_refused_not_forgotten_early() -> None:
    from cluster.core.state import ClusterState

    from .engine_driver import LOCK

    d = Driver(ClusterState(idempotency_max_keys=3))
    d.machine("lock", LOCK)
    for i in range(3):
        assert d.move("lock", f"l{i}", "create", key=f"k{i}").ok
        d.now += 1_000
    refused = d.move("lock", "l3", "create", key="k3")
    assert refused.error is not None and refused.error.code == "overloaded", refused
    assert "retry later" in refused.error.message
    assert d.obj("lock", "l3") is None  # nothing applied
    # every remembered key still answers a retry with the original outcome
    d.run(DeleteObject("lock", "l0"))
    retry = d.move("lock", "l0", "create", key="k0")
    assert retry.status == "created" and retry.body["object"]["version"] == 1  # a replay
    assert d.obj("lock", "l0") is None  # not applied twice
    # writes without a key, and retries of a remembered key, still go through
    assert d.move("lock", "u", "create").ok
    # once the oldest key's window has passed, its slot is free again
    d.now += 600_000
    assert d.move("lock", "l3", "create", key="k3").ok
    assert "k0" not in d.state.idempotency and "k3" in d.state.idempotency


def test_a_snapshot_from_before_compact_idempotency_records_still_loads(d: Driver) -> None:
    import orjson

    from cluster.core import codec

    d.move("timed", "k", "create", key="key-1")
    raw = orjson.loads(codec.dumps(d.state))
    raw["idempotency"] = [[k, f, orjson.loads(o), at] for k, f, o, at in raw["idempotency"]]
    del raw["tombstones"], raw["version_floors"]
    state = codec.loads(orjson.dumps(raw))
    assert codec.dumps(state) == codec.dumps(d.state)
