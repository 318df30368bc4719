"""The lock machine of SPEC section 3 through the pure engine: every error code it can hit."""

from __future__ import annotations

import pytest

from cluster.core.entries import DeleteMachine, DeleteObject, PutMachine
from cluster.core.records import iso_ms

from .engine_driver import LOCK, T0, Driver


@pytest.fixture
def d() -> Driver:
    driver = Driver()
    driver.machine("lock", LOCK)
    return driver


def test_create_acquire_release_cycle_bumps_version_by_one(d: Driver) -> None:
    created = d.move("lock", "db-1", "create")
    assert created.status == "created"
    assert created.body["object"]["state"] == "free"
    assert created.body["object"]["version"] == 1
    acquired = d.move("lock", "db-1", "acquire", {"owner": "w1"})
    assert acquired.status == "applied"
    assert acquired.body["object"]["state"] == "held"
    assert acquired.body["object"]["previous_state"] == "free"
    assert acquired.body["object"]["data"] == {"owner": "w1"}
    assert acquired.body["object"]["version"] == 2
    released = d.move("lock", "db-1", "release", {"owner": "w1"})
    assert released.body["object"]["state"] == "free"
    assert released.body["object"]["version"] == 3
    assert released.body["event"]["from"] == "held"


def test_renew_by_another_owner_is_refused_with_the_custom_message(d: Driver) -> None:
    d.move("lock", "db-1", "create")
    d.move("lock", "db-1", "acquire", {"owner": "w1"})
    before = d.snapshot()
    refused = d.move("lock", "db-1", "renew", {"owner": "w2"})
    assert refused.error is not None
    assert refused.error.code == "guard_failed"
    assert refused.error.details[0]["message"] == "only the lock owner can renew"
    assert refused.error.details[0]["path"] == "$dst.owner"
    assert d.snapshot() == before


def test_acquire_with_a_bad_owner_names_the_field_and_rule(d: Driver) -> None:
    d.move("lock", "db-1", "create")
    refused = d.move("lock", "db-1", "acquire", {"owner": "Bad Owner!"})
    assert refused.error is not None and refused.error.code == "guard_failed"
    assert {"path": "$dst.owner", "rule": "regex"}.items() <= refused.error.details[0].items()


def test_release_from_free_is_not_allowed_and_lists_allowed_transitions(d: Driver) -> None:
    d.move("lock", "db-1", "create")
    refused = d.move("lock", "db-1", "release", {"owner": "w1"})
    assert refused.error is not None
    assert refused.error.code == "transition_not_allowed"
    assert refused.error.details == ({"state": "free", "allowed": ["acquire", "destroy"]},)
    assert "allowed: acquire, destroy" in refused.error.message


def test_expected_version_mismatch_is_a_version_conflict(d: Driver) -> None:
    d.move("lock", "db-1", "create")
    refused = d.move("lock", "db-1", "acquire", {"owner": "w1"}, expected_version=7)
    assert refused.error is not None and refused.error.code == "version_conflict"
    assert refused.error.details == ({"expected": 7, "actual": 1},)
    ok = d.move("lock", "db-1", "acquire", {"owner": "w1"}, expected_version=1)
    assert ok.body["object"]["version"] == 2


def test_create_with_expected_version_zero_means_must_not_exist(d: Driver) -> None:
    assert d.move("lock", "a", "create", expected_version=0).status == "created"
    refused = d.move("lock", "a", "create", expected_version=0)
    assert refused.error is not None and refused.error.code == "version_conflict"


def test_creating_twice_is_object_exists(d: Driver) -> None:
    d.move("lock", "db-1", "create")
    refused = d.move("lock", "db-1", "create")
    assert refused.error is not None and refused.error.code == "object_exists"


def test_transition_on_a_missing_object_is_object_not_found(d: Driver) -> None:
    refused = d.move("lock", "nope", "acquire", {"owner": "w1"})
    assert refused.error is not None and refused.error.code == "object_not_found"
    assert "create" in refused.error.message


def test_unknown_transition_and_machine(d: Driver) -> None:
    d.move("lock", "db-1", "create")
    refused = d.move("lock", "db-1", "steal")
    assert refused.error is not None and refused.error.code == "transition_not_found"
    refused = d.move("nolock", "db-1", "create")
    assert refused.error is not None and refused.error.code == "machine_not_found"


def test_lease_expires_when_a_tick_passes_the_deadline(d: Driver) -> None:
    d.move("lock", "db-1", "create")
    d.move("lock", "db-1", "acquire", {"owner": "w1"})
    assert d.state.next_deadline_ms() == T0 + 30_000
    assert d.tick(T0 + 29_999).body == {"fired": 0}
    assert d.obj("lock", "db-1")["state"] == "held"
    assert d.tick(T0 + 30_000).body == {"fired": 1}
    lock = d.obj("lock", "db-1")
    assert lock["state"] == "free" and lock["version"] == 3 and lock["data"] == {}


def test_renew_pushes_the_lease_and_the_old_deadline_is_ignored(d: Driver) -> None:
    d.move("lock", "db-1", "create")
    d.move("lock", "db-1", "acquire", {"owner": "w1"})
    d.now = T0 + 20_000
    d.move("lock", "db-1", "renew", {"owner": "w1"})
    d.tick(T0 + 30_000)
    assert d.obj("lock", "db-1")["state"] == "held"
    d.tick(T0 + 50_000)
    assert d.obj("lock", "db-1")["state"] == "free"


def test_destroy_enters_a_removing_terminal_state(d: Driver) -> None:
    d.move("lock", "db-1", "create")
    outcome = d.move("lock", "db-1", "destroy")
    assert outcome.body["object"]["state"] == "gone"
    assert [e["kind"] for e in outcome.events] == ["transition", "removed"]
    assert d.obj("lock", "db-1") is None
    assert d.state.machine("lock").object_count == 0  # type: ignore[union-attr]
    assert d.move("lock", "db-1", "create").status == "created"


def test_machine_in_use_until_its_objects_are_deleted(d: Driver) -> None:
    d.move("lock", "db-1", "create")
    refused = d.run(DeleteMachine("lock"))
    assert refused.error is not None and refused.error.code == "machine_in_use"
    assert d.run(DeleteObject("lock", "db-1")).ok
    assert d.run(DeleteMachine("lock")).ok
    assert d.state.machine("lock") is None


def test_putting_the_same_definition_again_changes_nothing(d: Driver) -> None:
    again = d.run(PutMachine("lock", LOCK))
    assert again.status == "ok" and again.body["changed"] is False
    assert again.body["transitions"] == [
        "acquire",
        "create",
        "destroy",
        "expire",
        "release",
        "renew",
    ]


def test_objects_stay_pinned_to_their_revision(d: Driver) -> None:
    d.move("lock", "old", "create")
    old_revision = d.obj("lock", "old")["revision"]
    changed = d.run(PutMachine("lock", LOCK.replace("after: 30s", "after: 60s")))
    assert changed.body["changed"] is True and changed.body["revision"] != old_revision
    d.move("lock", "new", "create")
    assert d.obj("lock", "new")["revision"] == changed.body["revision"]
    d.move("lock", "old", "acquire", {"owner": "w1"})
    assert d.obj("lock", "old")["expires_at"] == iso_ms(T0 + 30_000)  # 30 s lease kept
    entry = d.state.machine("lock")
    assert entry is not None and set(entry.revisions) == {old_revision, changed.body["revision"]}


def test_invalid_definition_is_refused_with_every_problem(d: Driver) -> None:
    bad = "machine: x\nstates: {a: {}}\ntransitions:\n  go: {from: null, to: b}\n  up: {from: c, to: a}\n"
    refused = d.run(PutMachine("x", bad))
    assert refused.error is not None and refused.error.code == "invalid_schema"
    assert len(refused.error.details) >= 2
    assert all({"path", "line", "column", "message"} <= set(p) for p in refused.error.details)


def test_clock_never_goes_backwards(d: Driver) -> None:
    d.move("lock", "db-1", "create")
    d.now = T0 - 60_000  # a proposer with a slow clock
    d.move("lock", "db-1", "acquire", {"owner": "w1"})
    assert d.obj("lock", "db-1")["updated_at"] == iso_ms(T0)


def test_history_is_newest_first_and_bounded(d: Driver) -> None:
    d.machine(
        "short",
        LOCK.replace("history: 100", "history: 3").replace("machine: lock", "machine: short"),
    )
    d.move("short", "a", "create")
    for _ in range(5):
        d.move("short", "a", "acquire", {"owner": "w1"})
        d.move("short", "a", "release", {"owner": "w1"})
    events = d.state.history("short", "a", limit=10)
    assert [e["version"] for e in events] == [11, 10, 9]


def test_a_lease_that_runs_out_is_an_expired_event_then_the_move(d: Driver) -> None:
    d.move("lock", "db-1", "create")
    d.move("lock", "db-1", "acquire", {"owner": "w1"})
    fired = d.tick(T0 + 31_000)
    assert [(e["kind"], e["transition"]) for e in fired.events] == [("expired", "expire"), ("transition", "expire")]
    assert (fired.events[0]["expired"], fired.events[0]["from"], fired.events[0]["version"]) == ("timeout", "held", 2)
