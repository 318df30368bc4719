"""What the apply's speed-ups (issue 14, round three) must not change.

Flat rules meter the steps the nested closures metered and report failures in the
same order; the incremental data check refuses what the whole check refused, with
the same message; the regex memo answers as RE2 does; an event encodes lazily to
the bytes it encoded eagerly; a batch's transitions decode to what they encoded.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cluster.core.entries import Batch, CorruptEntry, Entry, Transition, decode, encode
from cluster.core.limits import check_data, check_merged
from cluster.core.outcome import Rejected
from cluster.events.window import feed_event
from schema_lang.conditions import CompileContext, compile_condition
from schema_lang.loader import load
from schema_lang.model import EvalContext, ObjectView
from schema_lang.rule_keywords import _MEMO, MEMO_SIZE, _re2_search, _remembered

RULES = """
r: {type: string, required: true, regex: '^a'}
s: {use: r, max_length: 100000}
o: {type: object}
"""


def metered(condition_yaml: str, dst: dict[str, Any]) -> tuple[int, list[str]]:
    ctx = CompileContext(load(RULES).value, [])
    condition = compile_condition(load(condition_yaml), ctx, "t", side="$dst")
    assert ctx.problems == [] and condition is not None
    steps: list[int] = []
    ectx = EvalContext(dst, {}, ObjectView("o", 1, "a"), "2026-11-22T07:00:00.000Z", steps.append)
    failures = [f.rule for f in condition(ectx)]
    return sum(steps), failures


def test_inlined_rule_sets_meter_every_level_they_replace() -> None:
    # condition rule (use, min_length: 2) + s (use, max_length: 2) + r (3 keywords) = 7
    # checks, each charging 2 steps per KiB of the 5,000-character value (4 KiB)
    steps, failures = metered("{v: {use: s, min_length: 1}}", {"v": "a" * 5000})
    assert (steps, failures) == (7 * 2 * 4, [])
    # a container is sized as JSON: 2 checks (use, type) x 2 x 3 KiB
    steps, _ = metered("{v: {use: o}}", {"v": {"k": "x" * 3100}})
    assert steps == 2 * 2 * 3
    # nothing is charged for an absent field or a value under 1 KiB
    assert metered("{v: {use: s}}", {})[0] == 0
    assert metered("{v: {use: s}}", {"v": "a" * 1023})[0] == 0


def test_inlined_rule_sets_fail_in_the_nested_order() -> None:
    _, failures = metered("{v: {use: s, min_length: 1}}", {"v": 5})
    assert failures == ["type", "regex", "max_length", "min_length"]
    _, failures = metered("{v: {use: s, min_length: 1}}", {})
    assert failures == ["required"]


@pytest.mark.parametrize(
    "fresh",
    [
        {"n": 2**64},
        {"n": 1, "m": {"x": [float("inf")]}},
        {"a": {"b": {"c": 2**70}}, "z": -(2**65)},
        {"z": 2**64, "a": -(2**66), "n": 5},  # the walk reports the last bad one it pushed
        {"p": [[[[[[[[[[]]]]]]]]]] * 3},
    ],
)
def test_the_incremental_data_check_refuses_what_the_whole_check_refused(
    fresh: dict[str, Any],
) -> None:
    nested: Any = "x"
    for _ in range(63):
        nested = [nested]
    if "p" in fresh:  # nested past the limit once inside the data
        fresh = {"p": nested}
        fresh["p"] = [fresh["p"]]
    stored = {"owner": "w1", "keep": {"deep": [1, 2, 3]}, "n": 3}
    data = {**stored, "payload": True, **fresh}
    with pytest.raises(Rejected) as whole:
        check_data(data, "the data")
    with pytest.raises(Rejected) as incremental:
        check_merged(data, "the data", frozenset(fresh))
    assert incremental.value.rejection == whole.value.rejection
    assert check_merged(stored, "the data", frozenset()) == len(orjson.dumps(stored))


def test_the_regex_memo_answers_as_re2_does() -> None:
    import re2

    compiled = re2.compile("^[a-z0-9-]{1,64}$")
    memo = _remembered(_re2_search(compiled))
    texts = [f"w-{i}" for i in range(MEMO_SIZE + 10)] + ["W1", "", "a" * 64, "a" * 65, "é"]
    texts += ["b" * 300]  # too long to remember
    for _ in range(2):  # the second pass answers from the memo (or after it started over)
        assert [memo(t) for t in texts] == [compiled.search(t) is not None for t in texts]


def test_the_regex_memo_is_bounded_across_every_regex() -> None:
    """Many machines with many regexes and distinct texts must not grow memory."""
    import re2

    memos = [_remembered(_re2_search(re2.compile(f"^x{i}"))) for i in range(4)]
    for n in range(MEMO_SIZE):
        for memo in memos:
            memo(f"x{n}")
        assert len(_MEMO) <= MEMO_SIZE


def test_an_event_encodes_on_first_read_to_the_bytes_it_encoded_at_apply() -> None:
    event = {"index": 7, "machine": "lock", "object": "l1", "kind": "transition",
             "data": {"owner": "w1", "n": [1, 2.5, None]}, "at": "2026-11-22T07:00:00.000Z"}
    feed = feed_event(event)
    frame = b"data: " + orjson.dumps(event) + b"\n\n"
    assert (feed.index, feed.machine, feed.object, feed.kind) == (7, "lock", "l1", "transition")
    assert feed.frame == frame and feed.frame is feed.frame  # encoded once, then shared
    assert feed.id_frame == frame[:-1] + b"id: 7\n\n"
    assert feed.blob == orjson.dumps(event)


def test_a_batch_of_transitions_decodes_to_what_it_encoded() -> None:
    ops = (
        Transition("lock", "a", "acquire", {"owner": "w1"}),
        Transition("lock", "b", "x", None, 4),
    )
    entry = Entry(Batch(ops, atomic=True), at_ms=5, request_id="r", idempotency_key="k")
    blob = encode(entry)
    assert blob.startswith(
        b'{"v":1,"c":{"k":"batch","operations":[{"k":"transition","machine":"lock","id":"a",'
        b'"transition":"acquire","data":{"owner":"w1"},"expected_version":null},'
    )
    decoded = decode(blob, 9)
    assert decoded.command == entry.command and decoded.index == 9 and encode(decoded) == blob


@pytest.mark.parametrize(
    "raw",
    [
        {"k": "transition", "machine": "m", "id": "a", "transition": "t", "data": None, "x": 1},
        {"k": "transition", "machine": "m", "id": "a", "transition": "t", "data": None,
         "expected_version": None, "x": 1},
        {"k": "transition", "machine": "m", "id": "a"},
    ],
)
def test_a_malformed_transition_is_still_a_corrupt_entry(raw: dict[str, Any]) -> None:
    blob = orjson.dumps({"v": 1, "c": raw, "t": 1, "r": "", "i": None, "p": None, "m": {}})
    with pytest.raises(CorruptEntry):
        decode(blob)
