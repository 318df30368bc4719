"""Properties of apply over random command sequences on the lock machine."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.core import codec
from cluster.core.entries import DeleteObject, Tick, Transition

from .engine_driver import LOCK, T0, Driver

IDS = st.sampled_from(["a", "b", "c"])
OWNERS = st.sampled_from(["w1", "w2", "BAD!"])
TRANSITIONS = st.sampled_from(
    ["create", "acquire", "renew", "release", "expire", "destroy", "nope"]
)

commands = st.one_of(
    st.builds(
        lambda i, t, o, v: Transition("lock", i, t, {"owner": o}, v),
        IDS,
        TRANSITIONS,
        OWNERS,
        st.one_of(st.none(), st.integers(0, 4)),
    ),
    st.builds(lambda i: DeleteObject("lock", i), IDS),
    st.just(Tick()),
)
steps = st.lists(st.tuples(commands, st.integers(0, 40_000)), max_size=40)


def fresh() -> Driver:
    driver = Driver()
    driver.machine("lock", LOCK)
    return driver


def run_all(driver: Driver, sequence: list) -> list:
    outcomes = []
    for command, delay in sequence:
        driver.now += delay
        outcomes.append(driver.run(command))
    return outcomes


@settings(max_examples=60, deadline=None)
@given(steps)
def test_apply_is_deterministic(sequence: list) -> None:
    a, b = fresh(), fresh()
    outcomes_a, outcomes_b = run_all(a, sequence), run_all(b, sequence)
    assert a.snapshot() == b.snapshot()
    assert outcomes_a == outcomes_b


@settings(max_examples=60, deadline=None)
@given(steps)
def test_a_failed_entry_leaves_the_state_byte_for_byte_unchanged(sequence: list) -> None:
    driver = fresh()
    for command, delay in sequence:
        driver.now += delay
        before = driver.snapshot()
        outcome = driver.run(command)
        if not outcome.ok:
            assert driver.snapshot() == before


@settings(max_examples=60, deadline=None)
@given(steps)
def test_versions_grow_by_exactly_one_per_applied_transition(sequence: list) -> None:
    # ...and an id created again after a removal continues above every version it had
    # (the version is a fencing token: it never goes backwards for a name).
    driver = fresh()
    highest: dict[str, int] = {}
    for command, delay in sequence:
        driver.now += delay
        key = ("lock", getattr(command, "id", ""))
        before = driver.state.get_object(*key) if isinstance(command, Transition) else None
        outcome = driver.run(command)
        if isinstance(command, Transition) and outcome.status in ("created", "applied"):
            version = outcome.body["object"]["version"]
            assert outcome.body["event"]["version"] == version
            if before is not None:
                assert version == before.version + 1
            else:
                assert version == highest.get(key[1], 0) + 1
            highest[key[1]] = max(highest.get(key[1], 0), version)
        for oid in {key[1], *highest}:
            now = driver.state.get_object("lock", oid)
            if now is not None:
                highest[oid] = max(highest.get(oid, 0), now.version)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_state_survives_a_serialize_round_trip(sequence: list) -> None:
    driver = fresh()
    run_all(driver, sequence)
    blob = driver.snapshot()
    restored = codec.loads(blob)
    assert codec.dumps(restored) == blob
    # and the restored state behaves the same from here on
    twin = Driver(restored)
    twin.index, twin.now = driver.index, driver.now
    follow_up = [(Tick(), 31_000), (Transition("lock", "a", "create"), 0)]
    assert run_all(twin, follow_up) == run_all(driver, follow_up)
    assert twin.snapshot() == driver.snapshot()


def test_thousands_of_transitions_on_one_object_keep_counting() -> None:
    """Long-lived objects: the applied-names set stays bounded and versions stay exact."""
    driver = fresh()
    driver.move("lock", "x", "create")
    for i in range(2_000):
        driver.now = T0 + i
        assert driver.move("lock", "x", "acquire", {"owner": "w1"}).ok
        assert driver.move("lock", "x", "release", {"owner": "w1"}).ok
    assert driver.obj("lock", "x")["version"] == 4_001
