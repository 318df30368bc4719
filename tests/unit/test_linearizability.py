"""The linearizability checker on hand-made and generated histories.

Every "rejected" case is a real violation, so these tests fail if the checker
accepts too much; every "accepted" case is a real linearizable history, so they
fail if it accepts too little.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.faults.linearizability import (
    Dedup,
    History,
    LockModel,
    Operation,
    VersionedRegister,
    check,
)

Span = tuple[float, float | None]


class Builder:
    """Hand-written histories: spans are (invoke, complete); complete None = timed out."""

    def __init__(self) -> None:
        self.ops: list[Operation] = []

    def add(self, process: str, kind: str, input: Any, span: Span, output: Any, key: str) -> None:
        out = None if span[1] is None else output
        self.ops.append(Operation(len(self.ops), process, key, kind, input, span[0], span[1], out))

    def transition(
        self,
        process: str,
        span: Span,
        target: str | None,
        output: Any,
        expected: int | None = None,
        key: str = "x",
        name: str = "t",
        data: Any = None,
    ) -> None:
        self.add(process, "transition", (name, expected, target, data), span, output, key)

    def read(self, process: str, span: Span, output: Any, key: str = "x") -> None:
        self.add(process, "read", None, span, output, key)

    def lock(self, process: str, kind: str, span: Span, output: Any, key: str = "L") -> None:
        self.add(process, kind, process, span, output, key)


def assert_linearizable(ops: list[Operation], model: Any) -> None:
    result = check(ops, model)
    assert result.ok, result.explanation
    assert result.verdict == "linearizable"


def assert_violation(ops: list[Operation], model: Any) -> str:
    result = check(ops, model)
    assert not result.ok
    assert result.verdict == "not_linearizable", result.explanation
    return result.explanation


# --- versioned register: completed operations -------------------------------------------


def test_sequential_history_is_linearizable() -> None:
    h = Builder()
    h.read("p1", (0, 1), "not_found")
    h.transition("p1", (2, 3), "free", ("ok", 1), expected=0, name="create")
    h.transition("p2", (4, 5), "held", ("ok", 2), expected=1)
    h.transition("p1", (6, 7), "free", ("version_conflict", 2), expected=1)
    h.read("p2", (8, 9), ("held", 2))
    assert_linearizable(h.ops, VersionedRegister())


def test_concurrent_writes_may_linearize_out_of_invocation_order() -> None:
    def history(second_starts: float) -> list[Operation]:
        h = Builder()
        h.transition("p1", (0, 10), "b", ("ok", 2))
        h.transition("p2", (second_starts, second_starts + 10), "a", ("ok", 1))
        h.read("p3", (30, 31), ("b", 2))
        return h.ops

    # p1 invoked first but its write is version 2: only valid while the two overlap
    assert_linearizable(history(second_starts=1), VersionedRegister())
    assert_violation(history(second_starts=11), VersionedRegister())


def test_read_concurrent_with_a_write_may_see_either_value() -> None:
    for seen in [("a", 1), ("b", 2)]:
        h = Builder()
        h.transition("p1", (0, 1), "a", ("ok", 1))
        h.transition("p1", (2, 10), "b", ("ok", 2))
        h.read("p2", (3, 4), seen)
        assert_linearizable(h.ops, VersionedRegister())


def test_stale_read_after_completed_write_is_rejected() -> None:
    h = Builder()
    h.transition("p1", (0, 1), "a", ("ok", 1))
    h.transition("p1", (2, 3), "b", ("ok", 2))
    h.read("p2", (4, 5), ("a", 1))
    assert_violation(h.ops, VersionedRegister())


def test_two_cas_from_the_same_expected_version_cannot_both_succeed() -> None:
    h = Builder()
    h.transition("p0", (0, 1), "a", ("ok", 1))
    h.transition("p1", (2, 6), "b", ("ok", 2), expected=1)
    h.transition("p2", (3, 7), "c", ("ok", 3), expected=1)
    assert_violation(h.ops, VersionedRegister())


def test_version_going_backwards_is_rejected() -> None:
    h = Builder()
    h.transition("p0", (0, 1), "a", ("ok", 1))
    h.transition("p0", (2, 3), "a", ("ok", 2))
    h.read("p1", (4, 5), ("a", 2))
    h.read("p2", (6, 7), ("a", 1))
    assert_violation(h.ops, VersionedRegister())


def test_version_must_increase_by_exactly_one() -> None:
    h = Builder()
    h.transition("p0", (0, 1), "a", ("ok", 1))
    h.transition("p0", (2, 3), "b", ("ok", 3))
    assert_violation(h.ops, VersionedRegister())


def test_version_conflict_is_illegal_when_the_expected_version_matches() -> None:
    h = Builder()
    h.transition("p0", (0, 1), "a", ("ok", 1))
    h.transition("p1", (2, 3), "b", ("version_conflict", 1), expected=1)
    assert_violation(h.ops, VersionedRegister())


def test_version_conflict_must_report_the_actual_version() -> None:
    h = Builder()
    h.transition("p0", (0, 1), "a", ("ok", 1))
    h.transition("p1", (2, 3), "b", ("version_conflict", 4), expected=7)
    assert_violation(h.ops, VersionedRegister())


def test_transition_table_decides_which_refusals_are_legal() -> None:
    table: dict[str, set[str | None]] = {"create": {None}, "acquire": {"free"}, "release": {"held"}}
    h = Builder()
    h.transition("p0", (0, 1), "free", ("ok", 1), name="create")
    h.transition("p0", (2, 3), "free", ("object_exists", None), name="create")
    h.transition("p1", (4, 5), "free", ("transition_not_allowed", "free"), name="release")
    h.transition("p1", (6, 7), "held", ("ok", 2), name="acquire")
    assert_linearizable(h.ops, VersionedRegister(table))
    h.transition("p2", (8, 9), "held", ("transition_not_allowed", "held"), name="release")
    assert_violation(h.ops, VersionedRegister(table))


def test_transition_on_an_absent_object_must_be_refused_as_not_found() -> None:
    h = Builder()
    h.transition("p0", (0, 1), None, "object_not_found")
    assert_linearizable(h.ops, VersionedRegister())
    h.transition("p0", (2, 3), None, ("ok", 1))
    assert_violation(h.ops, VersionedRegister())


def test_object_not_found_is_illegal_for_an_existing_object() -> None:
    h = Builder()
    h.transition("p0", (0, 1), "a", ("ok", 1))
    h.transition("p1", (2, 3), None, ("object_not_found", "x"))
    assert_violation(h.ops, VersionedRegister())


def test_object_exists_is_illegal_for_an_absent_object() -> None:
    h = Builder()
    h.transition("p0", (0, 1), "a", ("object_exists", "x"), name="create")
    assert_violation(h.ops, VersionedRegister())


def test_data_is_compared_when_a_read_returns_it() -> None:
    h = Builder()
    h.transition("p0", (0, 1), "held", ("ok", 1), data={"owner": "w1", "n": 1})
    h.transition("p0", (2, 3), None, ("ok", 2), data={"n": 2})
    h.read("p1", (4, 5), ("held", 2, {"n": 2, "owner": "w1"}))
    assert_linearizable(h.ops, VersionedRegister())
    assert_violation(h.ops, VersionedRegister(data_mode="replace"))


# --- indeterminate operations ------------------------------------------------------------


def test_indeterminate_write_that_applied_is_accepted() -> None:
    h = Builder()
    h.transition("p0", (0, 1), "a", ("ok", 1))
    h.transition("p1", (2, None), "b", None, expected=1)
    h.read("p2", (10, 11), ("b", 2))
    h.transition("p2", (12, 13), "c", ("ok", 3), expected=2)
    assert_linearizable(h.ops, VersionedRegister())


def test_indeterminate_write_that_did_not_apply_is_accepted() -> None:
    h = Builder()
    h.transition("p0", (0, 1), "a", ("ok", 1))
    h.transition("p1", (2, None), "b", None, expected=1)
    h.read("p2", (10, 11), ("a", 1))
    h.transition("p2", (12, 13), "c", ("ok", 2), expected=1)
    assert_linearizable(h.ops, VersionedRegister())


def test_indeterminate_write_may_apply_long_after_it_was_sent() -> None:
    h = Builder()
    h.transition("p0", (0, 1), "a", ("ok", 1))
    h.transition("p1", (2, None), "b", None)
    h.read("p2", (10, 11), ("a", 1))
    h.read("p2", (20, 21), ("b", 2))
    assert_linearizable(h.ops, VersionedRegister())


def test_indeterminate_write_cannot_apply_before_it_was_sent() -> None:
    h = Builder()
    h.transition("p0", (0, 1), "a", ("ok", 1))
    h.read("p2", (2, 3), ("b", 2))
    h.transition("p1", (5, None), "b", None)
    assert_violation(h.ops, VersionedRegister())


def test_read_of_an_indeterminate_write_then_a_read_without_it_is_rejected() -> None:
    h = Builder()
    h.transition("p0", (0, 1), "a", ("ok", 1))
    h.transition("p1", (2, None), "b", None)
    h.read("p2", (10, 11), ("b", 2))
    h.read("p3", (12, 13), ("a", 1))
    assert_violation(h.ops, VersionedRegister())


def test_indeterminate_write_applies_at_most_once() -> None:
    h = Builder()
    h.transition("p0", (0, 1), "a", ("ok", 1))
    h.transition("p1", (2, None), "b", None)
    h.read("p2", (10, 11), ("b", 2))
    h.read("p2", (12, 13), ("b", 3))
    assert_violation(h.ops, VersionedRegister())


# --- checker behaviour -------------------------------------------------------------------


def test_failure_explanation_shows_the_prefix_and_the_operation_that_cannot_be_placed() -> None:
    h = Builder()
    h.transition("p1", (0, 1), "a", ("ok", 1))
    h.transition("p1", (2, 3), "b", ("ok", 2))
    h.read("stale-reader", (4, 5), ("a", 1))
    text = assert_violation(h.ops, VersionedRegister())
    assert "key 'x'" in text
    assert "2 operations" in text  # the two writes linearize
    assert "#2 stale-reader: read(None) -> ('a', 1)" in text
    assert "illegal in this state" in text
    assert "('b', 2, ())" in text


def test_keys_are_checked_independently_and_the_bad_key_is_reported() -> None:
    h = Builder()
    h.transition("p1", (0, 1), "a", ("ok", 1), key="good")
    h.transition("p1", (0, 1), "a", ("ok", 1), key="bad")
    h.read("p2", (2, 3), ("a", 1), key="good")
    h.read("p2", (2, 3), "not_found", key="bad")
    result = check(h.ops, VersionedRegister())
    assert (result.ok, result.key, result.ops_checked) == (False, "bad", 4)
    assert_linearizable([h.ops[0], h.ops[2]], VersionedRegister())


def test_exhausted_search_budget_is_unknown_never_ok() -> None:
    h = Builder()
    for i in range(8):  # eight concurrent writes that timed out, then a read nobody wrote
        h.transition(f"p{i}", (0, None), f"s{i}", None)
    h.read("r", (20, 21), ("nobody", 1))
    result = check(h.ops, VersionedRegister(), max_steps=50)
    assert (result.ok, result.verdict, result.key, result.steps) == (False, "unknown", "x", 50)
    assert "max_steps=50" in result.explanation
    assert check(h.ops, VersionedRegister()).verdict == "not_linearizable"


def test_many_concurrent_refusals_and_reads_do_not_exhaust_the_search() -> None:
    """Each is legal anywhere and changes nothing; an impossible op after them is blamed at once."""
    h = Builder()
    h.lock("a", "acquire", (0, 1), ("ok", 2))
    for i in range(40):  # 2**40 subsets if each were a choice to backtrack over
        h.lock(f"c{i}", "acquire", (2, 50), ("refused", "guard_failed"))
        h.read(f"r{i}", (2, 50), ("a", 2), key="L")
    h.lock("b", "acquire", (60, 61), ("ok", 3))  # the lock was never released
    result = check(h.ops, LockModel(initial_version=1), max_steps=10_000)
    assert result.verdict == "not_linearizable", result.explanation
    assert result.steps < 1_000


def test_memoisation_keeps_many_concurrent_timeouts_tractable() -> None:
    h = Builder()
    for i in range(14):  # 14! orders, but only 2**14 distinct (set, state) pairs
        h.transition(f"p{i}", (0, None), "s", None)
    h.read("r", (20, 21), ("nobody", 1))
    result = check(h.ops, VersionedRegister(), max_steps=300_000)
    assert result.verdict == "not_linearizable", result.explanation


def test_completion_before_invocation_is_refused() -> None:
    bad = Operation(0, "p", "x", "read", None, 5.0, 4.0, "not_found")
    with pytest.raises(ValueError, match="not before its invocation"):
        check([bad], VersionedRegister())


def test_empty_history_is_linearizable() -> None:
    assert check([], VersionedRegister()).ok


# --- lock with fencing tokens ------------------------------------------------------------


def test_lock_handover_with_increasing_tokens_is_accepted() -> None:
    h = Builder()
    h.lock("w1", "acquire", (0, 1), ("ok", 1))
    h.lock("w2", "acquire", (2, 3), ("transition_not_allowed", "held"))
    h.lock("w1", "renew", (4, 5), ("ok", 2))
    h.lock("w2", "release", (6, 7), ("guard_failed", "owner"))
    h.lock("w1", "release", (8, 9), ("ok", 3))
    h.lock("w2", "acquire", (10, 11), ("ok", 4))
    h.add("r", "read", None, (12, 13), ("w2", 4), key="L")
    assert_linearizable(h.ops, LockModel())


def test_two_lock_holders_at_once_are_rejected() -> None:
    h = Builder()
    h.lock("w1", "acquire", (0, 5), ("ok", 1))
    h.lock("w2", "acquire", (1, 6), ("ok", 2))
    assert_violation(h.ops, LockModel())


def test_lock_tokens_not_increasing_are_rejected() -> None:
    h = Builder()
    h.lock("w1", "acquire", (0, 1), ("ok", 5))
    h.lock("w1", "release", (2, 3), ("ok", 6))
    h.lock("w2", "acquire", (4, 5), ("ok", 4))
    assert_violation(h.ops, LockModel(initial_version=4, exact=False))
    h.ops[2] = replace(h.ops[2], output=("ok", 7))
    assert_linearizable(h.ops, LockModel(initial_version=4, exact=False))


def test_acquire_refused_while_the_lock_is_free_is_rejected() -> None:
    h = Builder()
    h.lock("w1", "acquire", (0, 1), ("transition_not_allowed", "free"))
    assert_violation(h.ops, LockModel())


def test_release_by_another_owner_cannot_succeed() -> None:
    h = Builder()
    h.lock("w1", "acquire", (0, 1), ("ok", 1))
    h.lock("w2", "release", (2, 3), ("ok", 2))
    assert_violation(h.ops, LockModel())


def test_timed_out_acquire_may_hold_the_lock() -> None:
    h = Builder()
    h.lock("w1", "acquire", (0, None), None)
    h.lock("w2", "acquire", (5, 6), ("transition_not_allowed", "held"))
    h.lock("w1", "release", (7, 8), ("ok", 2))
    assert_linearizable(h.ops, LockModel())


def test_timed_out_acquire_cannot_take_a_held_lock() -> None:
    h = Builder()
    h.lock("w1", "acquire", (0, 1), ("ok", 1))
    h.lock("w2", "acquire", (2, None), None)
    h.add("r", "read", None, (3, 4), ("w2", 2), key="L")  # w1 never released
    assert_violation(h.ops, LockModel())


# --- de-duplication ----------------------------------------------------------------------


def test_dedup_accepts_each_message_once() -> None:
    h = Builder()
    h.add("p1", "create", "m1", (0, 3), "ok", key="inbox")
    h.add("p2", "create", "m1", (1, 2), "object_exists", key="inbox")  # p1's create won
    h.add("p2", "create", "m2", (4, None), None, key="inbox")
    h.add("p3", "create", "m2", (6, 7), "object_exists", key="inbox")
    h.add("p3", "contains", "m3", (8, 9), False, key="inbox")
    assert_linearizable(h.ops, Dedup())


def test_dedup_message_accepted_twice_is_rejected() -> None:
    h = Builder()
    h.add("p1", "create", None, (0, 3), ("ok", 1), key="msg-1")
    h.add("p2", "create", None, (1, 4), ("ok", 1), key="msg-1")
    assert_violation(h.ops, Dedup())


def test_dedup_duplicate_reported_before_any_create_is_rejected() -> None:
    h = Builder()
    h.add("p1", "create", None, (0, 1), "object_exists", key="msg-1")
    h.add("p2", "create", None, (2, 3), "ok", key="msg-1")
    assert_violation(h.ops, Dedup())


# --- generated histories -----------------------------------------------------------------
# Outputs come from small reference implementations written independently of the models,
# applied in a known order: that order is a valid linearization by construction.

STATES = ["a", "b", "c"]


def run_register(op: tuple[str, Any], obj: tuple[str, int] | None) -> tuple[Any, Any]:
    kind, arg = op
    if kind == "read":
        return ("not_found" if obj is None else obj), obj
    expected, target = arg
    version = 0 if obj is None else obj[1]
    if obj is None and target is None:
        return "object_not_found", obj
    if expected is not None and expected != version:
        return ("version_conflict", version), obj
    new = (target or obj[0], version + 1)  # type: ignore[index]
    return ("ok", version + 1), new


def run_lock(op: tuple[str, Any], lock: tuple[str | None, int]) -> tuple[Any, Any]:
    kind, owner = op
    holder, version = lock
    if kind == "read":
        return lock, lock
    may = holder is None if kind == "acquire" else holder == owner
    if not may:
        return ("transition_not_allowed", holder), lock
    return ("ok", version + 1), ((owner if kind != "release" else None), version + 1)


register_ops = st.one_of(
    st.tuples(st.just("read"), st.none()),
    st.tuples(
        st.just("transition"),
        st.tuples(st.none() | st.integers(0, 4), st.none() | st.sampled_from(STATES)),
    ),
)


def timed_history(
    calls: list[tuple[str, Any]],
    spans: list[tuple[float, float, bool]],
    run: Any,
    initial: Any,
    to_op: Any,
) -> list[Operation]:
    """Apply `calls` in order at times 0, 10, 20...; each op's span contains its own time."""
    ops, obj = [], initial
    for i, (call, (before, after, lost)) in enumerate(zip(calls, spans, strict=True)):
        output, obj = run(call, obj)
        at = 10.0 * i
        complete = None if lost else at + after
        ops.append(to_op(i, call, at - before, complete, None if lost else output))
    return ops


def register_op(i: int, call: tuple[str, Any], invoke: float, complete: Any, out: Any) -> Operation:
    kind, arg = call
    inp = None if kind == "read" else ("t", arg[0], arg[1])
    return Operation(i, f"p{i % 3}", "x", kind, inp, invoke, complete, out)


def lock_op(i: int, call: tuple[str, Any], invoke: float, complete: Any, out: Any) -> Operation:
    return Operation(i, call[1], "L", call[0], call[1], invoke, complete, out)


def wide_spans(n: int, lost: bool = True) -> st.SearchStrategy[list[tuple[float, float, bool]]]:
    span = st.tuples(st.floats(0, 35), st.floats(0, 35), st.booleans() if lost else st.just(False))
    return st.lists(span, min_size=n, max_size=n)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_sequential_execution_with_overlapping_intervals_is_accepted(data: Any) -> None:
    calls = data.draw(st.lists(register_ops, min_size=1, max_size=14))
    spans = data.draw(wide_spans(len(calls)))
    ops = timed_history(calls, spans, run_register, None, register_op)
    assert_linearizable(ops, VersionedRegister())


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_lock_execution_with_overlapping_intervals_is_accepted(data: Any) -> None:
    owners = st.sampled_from(["w1", "w2", "w3"])
    kinds = st.sampled_from(["acquire", "acquire", "release", "renew", "read"])
    calls = data.draw(st.lists(st.tuples(kinds, owners), min_size=1, max_size=14))
    spans = data.draw(wide_spans(len(calls)))
    ops = timed_history(calls, spans, run_lock, (None, 0), lock_op)
    assert_linearizable(ops, LockModel())


def mutated(output: Any) -> Any:
    if output == "not_found":
        return ("a", 1)
    if isinstance(output, tuple) and output[0] == "ok":
        return ("ok", output[1] + 1)
    if isinstance(output, tuple) and output[0] in STATES:
        return (output[0], output[1] - 1)
    return None


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_one_wrong_output_in_a_sequential_history_is_rejected(data: Any) -> None:
    calls = data.draw(st.lists(register_ops, min_size=1, max_size=20))
    spans = data.draw(
        st.lists(
            st.tuples(st.floats(0, 4), st.floats(0, 4), st.just(False)),
            min_size=len(calls),
            max_size=len(calls),
        )
    )
    ops = timed_history(calls, spans, run_register, None, register_op)
    candidates = [op for op in ops if mutated(op.output) is not None]
    assume(candidates)
    victim = data.draw(st.sampled_from(candidates))
    ops[victim.id] = replace(victim, output=mutated(victim.output))
    result = check(ops, VersionedRegister())
    assert result.verdict == "not_linearizable", (victim, result.explanation)


def random_calls(rng: random.Random, n: int) -> list[tuple[str, Any]]:
    calls: list[tuple[str, Any]] = []
    for _ in range(n):
        if rng.random() < 0.4:
            calls.append(("read", None))
        else:
            expected = rng.choice([None, None, rng.randrange(0, n)])
            calls.append(("transition", (expected, rng.choice(STATES + [None]))))
    return calls


def test_large_sequential_history_is_checked_in_linear_steps() -> None:
    rng = random.Random(7)
    ops: list[Operation] = []
    for k in range(5):
        spans = [(rng.uniform(0, 4), rng.uniform(0, 4), False) for _ in range(1000)]
        key_ops = timed_history(random_calls(rng, 1000), spans, run_register, None, register_op)
        ops += [replace(op, id=op.id + 1000 * k, key=f"k{k}") for op in key_ops]
    result = check(ops, VersionedRegister())
    assert result.ok, result.explanation
    assert result.ops_checked == 5000
    assert result.steps == 5000  # sequential: every op is placed at its first try


def test_large_concurrent_history_with_timeouts_is_checked_within_budget() -> None:
    rng = random.Random(11)
    spans = [(rng.uniform(0, 25), rng.uniform(0, 25), rng.random() < 0.02) for _ in range(2000)]
    ops = timed_history(random_calls(rng, 2000), spans, run_register, None, register_op)
    result = check(ops, VersionedRegister(), max_steps=200_000)
    assert result.ok, result.explanation


# --- the recorder ------------------------------------------------------------------------


def test_history_records_intervals_timeouts_and_discards() -> None:
    ticks = iter(range(100))
    history = History(clock=lambda: float(next(ticks)))
    write = history.invoke("p1", "x", "transition", ("t", None, "a"))
    read = history.invoke("p2", "x", "read")
    lost = history.invoke("p3", "x", "transition", ("t", None, "b"))
    refused = history.invoke("p4", "x", "read")
    open_op = history.invoke("p5", "x", "read")
    history.complete(write, ("ok", 1))
    history.complete(read, ("a", 1))
    history.timeout(lost)
    history.discard(refused)
    ops = history.operations()
    assert [(op.id, op.invoke, op.complete, op.output) for op in ops] == [
        (write, 0.0, 5.0, ("ok", 1)),
        (read, 1.0, 6.0, ("a", 1)),
        (lost, 2.0, None, None),
        (open_op, 4.0, None, None),
    ]
    assert check(ops, VersionedRegister()).ok
    with pytest.raises(ValueError, match="already finished"):
        history.complete(write, ("ok", 2))
    with pytest.raises(ValueError, match="unknown"):
        history.timeout(99)


def test_history_is_safe_to_share_between_threads() -> None:
    history = History()

    def worker(name: str) -> None:
        for i in range(200):
            op_id = history.invoke(name, "x", "read")
            history.complete(op_id, i)

    threads = [threading.Thread(target=worker, args=(f"t{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ops = history.operations()
    assert len({op.id for op in ops}) == len(ops) == 1600
    assert all(op.complete is not None and op.invoke <= op.complete for op in ops)


def test_history_records_from_coroutines() -> None:
    history = History()
    versions = iter(range(1, 100))

    async def client(name: str) -> None:
        for _ in range(5):
            op_id = history.invoke(name, "x", "transition", ("t", None, name))
            await asyncio.sleep(0)
            history.complete(op_id, ("ok", next(versions)))

    async def main() -> None:
        await asyncio.gather(*(client(f"c{n}") for n in range(4)))

    asyncio.run(main())
    # versions were handed out in completion order, within each op's interval
    assert check(history.operations(), VersionedRegister()).ok
