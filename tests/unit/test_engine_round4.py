"""What the apply's speed-ups of issue 14, round four, must not change.

A staged history (cluster/core/history.py) holds exactly the newest `keep` events a
plain tuple would, in order, whatever `keep` does between appends; the engine's
reads, snapshots and a snapshot taken mid-staging give what plain tuples gave; a
resulting data that reuses the payload's measured size meters and refuses exactly
as measuring it would.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.core import codec
from cluster.core.candidates import resulting_data
from cluster.core.entries import Transition
from cluster.core.history import RECENT, appended, events
from cluster.core.outcome import Rejected
from cluster.core.records import ObjectRecord
from schema_lang.model import EvalContext, ObjectView, TransitionDef

from .engine_driver import Driver


def _event(n: int) -> dict[str, Any]:
    return {"index": n, "kind": "transition"}


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(0, 130),
    appends=st.lists(st.integers(1, 120), max_size=150),
)
def test_a_staged_history_keeps_what_a_plain_tuple_keeps(start: int, appends: list[int]) -> None:
    """`start` events loaded from a snapshot (possibly more than `keep`), then appends with
    the `keep` each came with (a machine revision may change it)."""
    history: tuple[Any, ...] = tuple(_event(n) for n in range(start))
    model = list(history)
    for n, keep in enumerate(appends, start):
        event = _event(n)
        history = appended(history, event, keep)
        model = (model + [event])[-keep:]
        assert list(events(history)) == model
        staged = bool(history) and history[0].__class__ is int
        if staged:  # (skip, chunks, recent, held): recent stays short, skip inside chunk 0
            skip, chunks, recent, held = history
            assert len(recent) < RECENT and 0 <= skip < len(chunks[0])
            assert all(chunks) and held == sum(len(c) for c in chunks)
        else:
            assert all(e.__class__ is dict for e in history)


HISTORY_MACHINE = """
history: 20
states:
  a: {}
  b: {}
transitions:
  create: {from: null, to: a}
  touch: {from: a}
  go: {from: a, to: b}
  leave: {from: b, to: a}
"""


def test_reads_and_snapshots_of_staged_histories_are_the_plain_events() -> None:
    driver = Driver()
    driver.machine("h", HISTORY_MACHINE)
    assert driver.move("h", "x", "create").ok
    driver.moves("h", "x", "touch", 57)  # 58 events, 20 kept: staged (57 - 16 * 3 = 9 recent)
    stored = driver.state.histories[("h", "x")]
    assert stored[0].__class__ is int
    newest_first = driver.state.history("h", "x", limit=100)
    assert [e["data"]["n"] for e in newest_first] == list(range(56, 36, -1))
    assert driver.state.history("h", "x", limit=3) == newest_first[:3]
    # the snapshot holds the plain events: a state loaded from it dumps the same bytes,
    # and both go on to the same state (one staged, the other plain when loaded)
    blob = codec.dumps(driver.state)
    loaded = Driver(codec.loads(blob))
    loaded.index, loaded.now = driver.index, driver.now
    assert codec.dumps(loaded.state) == blob
    for d in (driver, loaded):
        d.moves("h", "x", "touch", 30)
    assert codec.dumps(loaded.state) == codec.dumps(driver.state)
    assert loaded.state.history("h", "x") == driver.state.history("h", "x")


def test_a_refused_entry_leaves_a_staged_history_as_it_was() -> None:
    driver = Driver()
    driver.machine("h", HISTORY_MACHINE)
    assert driver.move("h", "x", "create").ok
    driver.moves("h", "x", "touch", 25)
    before = driver.state.histories[("h", "x")]
    blob = codec.dumps(driver.state)
    assert not driver.run(Transition("h", "x", "leave")).ok
    assert driver.state.histories[("h", "x")] is before and codec.dumps(driver.state) == blob


def _record(data: dict[str, Any]) -> ObjectRecord:
    return ObjectRecord("m", "o", "r", "a", None, data, 1, 1, None, (), 0, 0, None, 1, ())


BIG = "x" * 1500  # over a KiB: the data steps are metered


@pytest.mark.parametrize(
    ("mode", "stored", "payload"),
    [
        ("merge", {}, {"a": BIG}),
        ("merge", {"a": 1}, {"a": BIG}),  # every stored key in the payload: the payload's size
        ("merge", {"b": BIG}, {"a": 1}),  # a stored key beyond it: measured
        ("merge", {"b": "y" * 700}, {"a": "z" * 700}),  # each < 1 KiB, together more
        ("replace", {"b": BIG}, {"a": 1}),
        ("keep", {"b": BIG}, {"a": 1}),  # keep: the stored data, not the payload
        ("keep", {}, {"a": BIG}),
    ],
)
def test_the_payload_size_shortcut_meters_as_measuring_does(
    mode: Any, stored: dict[str, Any], payload: dict[str, Any]
) -> None:
    import orjson

    d = TransitionDef("t", False, False, frozenset({"a"}), "a", data_mode=mode)
    record = _record(stored)
    results = []
    for size in (None, len(orjson.dumps(payload))):
        steps: list[int] = []
        ctx = EvalContext(payload, stored, ObjectView("o", 1, "a"), "now", steps.append)
        results.append((resulting_data(d, record, ctx, size), steps))
    assert results[0] == results[1]


def test_the_payload_size_shortcut_refuses_as_measuring_does() -> None:
    d = TransitionDef("t", False, False, frozenset({"a"}), "a")
    stored = {"b": "y" * 40_000}
    record = _record(stored)
    payload = {"a": "z" * 40_000}
    ctx = EvalContext(payload, stored, ObjectView("o", 1, "a"), "now", None)
    with pytest.raises(Rejected) as refused:
        resulting_data(d, record, ctx, 40_008)
    assert refused.value.rejection.code == "payload_too_large"


# ---- value-only rules remember the short strings they passed -------------------------

MEMO_RULES = """
a: {type: string, regex: '^a'}
b: {type: string, regex: '^b', max_length: 3}
"""


def _condition(yaml_text: str) -> Any:
    from schema_lang.conditions import CompileContext, compile_condition
    from schema_lang.loader import load

    ctx = CompileContext(load(MEMO_RULES).value, [])
    condition = compile_condition(load(yaml_text), ctx, "t", side="$dst")
    assert ctx.problems == [] and condition is not None
    return condition


def _failures(condition: Any, dst: dict[str, Any], src: dict[str, Any] | None = None) -> list:
    ectx = EvalContext(dst, src or {}, ObjectView("o", 1, "s"), "2026-11-22T07:00:00.000Z", None)
    return [(f.path, f.rule, f.message) for f in condition(ectx)]


def test_a_remembered_pass_belongs_to_its_rule() -> None:
    first, second = _condition("x: {use: a}"), _condition("x: {use: b}")
    for _ in range(2):  # the second round answers from the memo
        assert _failures(first, {"x": "abc"}) == []
        assert [r for _, r, _ in _failures(second, {"x": "abc"})] == ["regex"]
        assert _failures(second, {"x": "bcd"}) == []
        assert [r for _, r, _ in _failures(second, {"x": "bcde"})] == ["max_length"]
        assert [r for _, r, _ in _failures(first, {"x": 5})] == ["type", "regex"]


def test_a_rule_that_reads_the_context_is_not_remembered() -> None:
    condition = _condition("x: {type: string, src: owner}")
    assert _failures(condition, {"x": "w1"}, {"owner": "w1"}) == []
    assert [r for _, r, _ in _failures(condition, {"x": "w1"}, {"owner": "w2"})] == ["src"]


def test_a_remembered_rule_keeps_its_message_and_required() -> None:
    condition = _condition("x: {use: a, required: true, message: say a}")
    assert _failures(condition, {"x": "abc"}) == []
    assert _failures(condition, {"x": "abc"}) == []
    assert _failures(condition, {"x": "zzz"}) == [("$dst.x", "regex", "say a")]
    assert _failures(condition, {}) == [("$dst.x", "required", "say a")]


# ---- a non-atomic batch's operations are steps of one Tx, not child Txs ---------------

DEEP_STEPS = "\n".join(
    f"  s{i}: {{from: n{i}, to: n{i + 1}, then: [{{transition: s{i + 1}}}]}}" for i in range(11)
)
DEEP_STATES = "\n".join(f"  n{i}: {{}}" for i in range(13))
# `s0` writes ten transitions through its `then` chain and is then refused (deeper than 10);
# `t` from n0 creates the object, `back` removes it (terminal state with remove)
DEEP = (f"machine: deep\nhistory: 20\nstates:\n{DEEP_STATES}\n  gone: {{terminal: true, remove: true}}\n"
        f"transitions:\n  create: {{from: null, to: n0}}\n{DEEP_STEPS}\n  s11: {{from: n11, to: n12}}\n"
        "  back: {from: '*', to: gone}\n")


def _batch_world() -> Driver:
    from .engine_driver import LOCK

    driver = Driver()
    driver.machine("lock", LOCK)
    driver.machine("deep", DEEP)
    for oid in ("a", "b"):
        assert driver.move("deep", oid, "create").ok
    return driver


_OPS = st.one_of(
    st.builds(lambda i, t, o: Transition("lock", i, t, {"owner": o}),
              st.sampled_from(["l1", "l2"]),
              st.sampled_from(["create", "acquire", "release", "renew", "destroy"]),
              st.sampled_from(["w1", "w2", "BAD!"])),
    st.builds(lambda i, t: Transition("deep", i, t),
              st.sampled_from(["a", "b", "c"]), st.sampled_from(["create", "s0", "s11", "back"])),
)


def _batch_with_children(tx: Any, cmd: Any) -> Any:
    """How a batch ran before round four (a child Tx per operation): the oracle."""
    from cluster.core.engine import BudgetExceeded, Outcome, aborted_batch
    from cluster.core.transitions import apply_transition_command

    results = []
    for position, op in enumerate(cmd.operations):
        step = tx.child()
        tx.charge(1)
        try:
            results.append(apply_transition_command(step, op))
            step.merge_into_parent()
        except BudgetExceeded:
            raise
        except Rejected as exc:
            if cmd.atomic:
                return aborted_batch(len(cmd.operations), position, exc.rejection)
            results.append(Outcome.rejected(exc.rejection))
    return Outcome("ok", {"count": len(results)}, results=tuple(results))


def _summary(outcome: Any) -> Any:
    return (outcome.status, outcome.error, outcome.raw_body, outcome.events,
            [(r.status, r.error, r.raw_body) for r in outcome.results])


@settings(max_examples=150, deadline=None)
@given(batches=st.lists(st.tuples(st.lists(_OPS, min_size=1, max_size=8), st.booleans()),
                        min_size=1, max_size=4))
def test_a_batch_applies_as_it_did_with_a_child_tx_per_operation(batches: list) -> None:
    """Steps of one Tx give the outcomes and the state child Txs gave: a refused operation
    leaves nothing behind, even after its `then` chain wrote ten transitions or it removed
    an object; an atomic batch applies all of them or nothing."""
    from cluster.core import engine
    from cluster.core.entries import Batch, Entry

    steps, children = _batch_world(), _batch_world()
    for n, (ops, atomic) in enumerate(batches):
        entry = Entry(Batch(tuple(ops), atomic), at_ms=1_795_000_000_000 + 1000 * n, index=100 + n)
        outcome = engine.apply(steps.state, entry)
        saved = engine.DISPATCH[Batch]
        engine.DISPATCH[Batch] = _batch_with_children
        try:
            expected = engine.apply(children.state, entry)
        finally:
            engine.DISPATCH[Batch] = saved
        assert _summary(outcome) == _summary(expected)
        assert codec.dumps(steps.state) == codec.dumps(children.state)
