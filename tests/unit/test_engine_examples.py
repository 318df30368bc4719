"""Every shipped example machine driven through the pure engine, as a user would."""

from __future__ import annotations

import hashlib

import pytest

from cluster.core.entries import TaskReport, Transition, Vote
from schema_lang import example_names, load_example

from .engine_driver import T0, Driver

HOUR = 3_600_000


@pytest.fixture
def d() -> Driver:
    driver = Driver()
    for name in example_names():
        driver.machine(name, load_example(name))
    return driver


def code(outcome) -> str | None:  # type: ignore[no-untyped-def]
    return outcome.error.code if outcome.error else None


def test_every_example_is_exercised_here() -> None:
    assert set(example_names()) == {
        "lock",
        "dedup",
        "session",
        "cart",
        "approval",
        "deploy",
        "task",
        "blockchain",
    }


def test_lock_fencing_tokens_increase_across_owners(d: Driver) -> None:
    d.move("lock", "db", "create")
    tokens = []
    for owner in ("w1", "w2", "w3"):
        acquired = d.move("lock", "db", "acquire", {"owner": owner})
        tokens.append(acquired.body["object"]["version"])
        assert (
            code(d.move("lock", "db", "acquire", {"owner": "intruder"})) == "transition_not_allowed"
        )
        d.move("lock", "db", "release", {"owner": owner})
    assert tokens == sorted(tokens) and len(set(tokens)) == 3


def test_dedup_accepts_a_message_once_within_the_window(d: Driver) -> None:
    assert d.move("dedup", "msg-1", "see", {"received_by": "w1"}).status == "created"
    assert code(d.move("dedup", "msg-1", "see", {"received_by": "w2"})) == "object_exists"
    d.tick(T0 + HOUR)
    assert d.obj("dedup", "msg-1") is None
    assert d.move("dedup", "msg-1", "see", {"received_by": "w3"}).status == "created"


def test_session_expires_after_inactivity_and_touch_keeps_it_alive(d: Driver) -> None:
    d.move("session", "s1", "start", {"user": "ann"})
    assert code(d.move("session", "s1", "touch", {"user": "bob"})) == "guard_failed"
    d.now = T0 + 10 * 60_000
    d.move("session", "s1", "touch", {"user": "ann", "page": "/cart"})
    d.tick(T0 + 15 * 60_000)
    assert d.obj("session", "s1")["data"] == {"user": "ann", "page": "/cart"}
    d.tick(T0 + 25 * 60_000)
    assert d.obj("session", "s1") is None


def test_cart_refuses_an_empty_checkout_and_ends_paid(d: Driver) -> None:
    created = d.move("cart", "c1", "create", {"customer": "ann"})
    assert created.body["object"]["data"] == {"customer": "ann", "items": []}
    empty = d.move("cart", "c1", "checkout")
    assert (
        code(empty) == "guard_failed" and empty.error.details[0]["message"] == "the cart is empty"
    )
    d.move("cart", "c1", "add", {"items": [{"sku": "A", "qty": 1}]})
    assert d.move("cart", "c1", "checkout").body["object"]["state"] == "checkout"
    assert code(d.move("cart", "c1", "pay", {"amount": 10})) == "guard_failed"  # no payment_id
    paid = d.move("cart", "c1", "pay", {"payment_id": "p-1", "amount": 10})
    assert [e["kind"] for e in paid.events] == ["transition", "emitted"]
    assert code(d.move("cart", "c1", "add", {"items": []})) == "terminal_state"


def test_approval_needs_two_of_three_voters(d: Driver) -> None:
    d.move("approval", "r1", "create", {"title": "new vendor"})
    d.move("approval", "r1", "submit")
    pending = d.move("approval", "r1", "approve")
    change = pending.body["pending"]["change"]
    assert pending.body["pending"]["required"] == 2
    assert d.run(Vote("approval", "r1", "alice", True, change)).body["outcome"] == "pending"
    applied = d.run(Vote("approval", "r1", "carol", True, change))
    assert applied.body["outcome"] == "applied"
    assert d.obj("approval", "r1")["state"] == "approved"


def test_deploy_runs_tasks_then_next_to_running_and_teardown_to_destroyed(d: Driver) -> None:
    d.move("deploy", "master", "launch", {"apiImageTag": "e724e901125e"})
    provision = d.move("deploy", "master", "provision")
    assert [t["name"] for t in provision.body["object"]["tasks"]] == ["ssl-cert", "db-setup"]
    d.run(TaskReport("deploy", "master", "ssl-cert", "completed"))
    assert d.obj("deploy", "master")["state"] == "provision"
    d.run(TaskReport("deploy", "master", "db-setup", "completed"))
    assert d.obj("deploy", "master")["state"] == "running"
    d.move("deploy", "master", "update", {"apiImageTag": "abcdef1"})
    d.move("deploy", "master", "destroy")
    d.run(TaskReport("deploy", "master", "db-drop", "completed"))
    assert d.obj("deploy", "master") is None


def test_task_follows_assign_and_schedule_in_any_order_and_revise_restarts(d: Driver) -> None:
    d.move("task", "t1", "create", {"description": "write docs"})
    assert code(d.move("task", "t1", "start")) == "transition_not_allowed"
    d.move("task", "t1", "schedule", {"deadline": "2026-12-01"})
    d.move("task", "t1", "assign", {"assignee": "ann"})
    assert d.move("task", "t1", "start").body["object"]["state"] == "started"
    kept = d.move("task", "t1", "reassign", {"assignee": "bob"})
    assert kept.body["object"]["data"]["assignee"] == "ann"  # data: keep
    assert kept.body["event"]["data"] == {"assignee": "bob"}  # ...but recorded in history
    revised = d.move("task", "t1", "revise")
    assert (
        revised.body["object"]["state"] == "created" and revised.body["object"]["generation"] == 2
    )
    d.move("task", "t1", "assign", {"assignee": "cid"})
    assert (
        code(d.move("task", "t1", "start")) == "transition_not_allowed"
    )  # not scheduled again yet


def test_blockchain_links_blocks_and_keeps_a_running_checksum(d: Driver) -> None:
    root_half = "ab" * 32
    created = d.move("blockchain", "chain", "create", {"rootBlock": root_half * 2})
    data = created.body["object"]["data"]
    assert data["currentBlock"] == root_half
    checksum = hashlib.sha256((root_half * 2).encode()).hexdigest()
    assert data["checksum"] == checksum
    previous = root_half
    for n in range(3):
        block = hashlib.sha256(f"block-{n}".encode()).hexdigest()
        appended = d.move(
            "blockchain", "chain", "append", {"previousBlock": previous, "currentBlock": block}
        )
        checksum = hashlib.sha256((checksum + block).encode()).hexdigest()
        assert appended.body["object"]["data"]["checksum"] == checksum
        previous = block
    fork = d.move(
        "blockchain", "chain", "append", {"previousBlock": root_half, "currentBlock": "cd" * 32}
    )
    assert code(fork) == "guard_failed"
    assert fork.error.details[0]["message"] == "previousBlock must be the chain's current block"


def test_blockchain_root_block_must_be_one_half_written_twice(d: Driver) -> None:
    bad = d.move("blockchain", "c2", "create", {"rootBlock": "ab" * 32 + "cd" * 32})
    assert code(bad) == "guard_failed"
    assert bad.error.details[0]["message"] == "the root block is 64 hex characters written twice"


def test_then_chain_deeper_than_ten_is_refused() -> None:
    steps = "\n".join(
        f"  s{i}: {{from: n{i}, to: n{i + 1}, then: [{{transition: s{i + 1}}}]}}" for i in range(11)
    )
    states = "\n".join(f"  n{i}: {{}}" for i in range(13))
    source = f"machine: deep\nstates:\n{states}\ntransitions:\n  create: {{from: null, to: n0}}\n{steps}\n  s11: {{from: n11, to: n12}}\n"
    driver = Driver()
    driver.machine("deep", source)
    driver.move("deep", "x", "create")
    before = driver.snapshot()
    refused = driver.run(Transition("deep", "x", "s0"))
    assert code(refused) == "invalid_request" and "deeper than 10" in refused.error.message
    assert driver.snapshot() == before
