"""Fuzzing the schema language and the guards it compiles (SPEC 3, 4.9).

- Any text, and any JSON-shaped definition built from the language's own
  keywords, either compiles or raises `SchemaError` (the API's
  `invalid_schema`): never another exception, never an unbounded wait.
- Guard inputs: for generated definitions that compile, random payloads driven
  through the pure engine give an applied outcome or a rejection value, never
  an exception or an `internal` rejection.
- Catastrophic regexes (`(a+)+$` and friends) on long inputs are answered in
  linear time (RE2), both when compiling and when guarding.

The budget is fixed (`max_examples`, derandomized) so CI time stays bounded.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.core.entries import PutMachine, Transition
from schema_lang import SchemaError, compile_machine
from tests.unit.engine_driver import Driver

FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
BOUND_SECONDS = 10.0  # "bounded": far above any sane compile, far below a hang
STATES = ["s0", "s1", "s2", "gone", "nowhere"]
RULE_KEYS = ["required", "type", "regex", "enum", "const", "min", "max", "min_length",
             "max_length", "src", "matches", "$vars", "not", "all_of", "any_of", "use", "message"]
EVIL_REGEXES = ["(a+)+$", "(a|aa)+$", "(a|a?)+$", "(.*a){20}", "^(\\w+\\s?)*$", "(x+x+)+y"]

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
templates = st.sampled_from(["${src.a}", "${dst.b}", "${vars.v}", "${object.id}", "${now}",
                             "${sha256(src.a, dst.b)}", "${substr(0,4)}", "${len(dst.a)}",
                             "${", "${nope(1)}", "${upper(lower(dst.a))}", "x${dst.a}y"])


@st.composite
def rules(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(RULE_KEYS), max_size=3, unique=True)):
        if key in ("not",) and depth < 2:
            out[key] = draw(rules(depth + 1))
        elif key in ("all_of", "any_of") and depth < 2:
            out[key] = draw(st.lists(rules(depth + 1), max_size=2))
        elif key == "regex":
            out[key] = draw(st.one_of(st.sampled_from(EVIL_REGEXES), st.text(max_size=12)))
        elif key == "type":
            out[key] = draw(st.sampled_from(["string", "integer", "number", "boolean", "object",
                                             "array", "null", "bogus"]))
        elif key in ("matches", "message"):
            out[key] = draw(templates)
        elif key == "$vars":
            out[key] = {"v": draw(templates)}
        elif key == "use":
            out[key] = draw(st.sampled_from(["r1", "missing"]))
        elif key == "src":
            out[key] = draw(st.sampled_from(["a", "b"]))
        else:
            out[key] = draw(json_value)
    return out


conditions = st.one_of(st.dictionaries(st.sampled_from(["a", "b", "c.d"]), rules(), max_size=2),
                       st.lists(st.dictionaries(st.sampled_from(["a", "b"]), rules(), max_size=2),
                                max_size=2))


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    """A chain s0 -> s1 -> ... (so every state is reachable) with random guards, data
    invariants and templates; now and then a reference to a state that does not exist."""
    count = draw(st.integers(1, 3))
    names = [f"s{i}" for i in range(count)]
    states: dict[str, Any] = {name: {} for name in names}
    for spec in states.values():
        if draw(st.integers(0, 3)) == 0:
            spec["data"] = draw(conditions)
    transitions: dict[str, Any] = {"create": {"from": None, "to": "s0"}}
    for i in range(1, count + 1):
        t: dict[str, Any] = {"from": names[i - 1] if i < count else draw(st.sampled_from(names + ["*"]))}
        if i < count:
            t["to"] = names[i]
        if draw(st.integers(0, 9)) == 0:
            t["to"] = draw(st.sampled_from(STATES))  # maybe unknown
        if draw(st.booleans()):
            t["$dst"] = draw(conditions)
        if draw(st.integers(0, 2)) == 0:
            t["$src"] = draw(conditions)
        if draw(st.integers(0, 4)) == 0:
            t["set"] = {"a": draw(templates)}
        if draw(st.integers(0, 4)) == 0:
            t["data"] = draw(st.sampled_from(["merge", "replace", "keep", "bogus"]))
        transitions[f"t{i}"] = t
    out: dict[str, Any] = {"states": states, "transitions": transitions}
    if draw(st.booleans()):
        out["rules"] = {"r1": draw(rules())}
    return out


def compile_or_schema_error(source: str) -> Any:
    started = time.monotonic()
    try:
        return compile_machine(source, name="fuzz")
    except SchemaError as exc:
        assert exc.problems if hasattr(exc, "problems") else True
        return None
    finally:
        elapsed = time.monotonic() - started
        assert elapsed < BOUND_SECONDS, f"compiling took {elapsed:.1f}s:\n{source[:2000]}"


@FUZZ
@given(st.text(max_size=400))
def test_any_text_compiles_or_is_a_schema_error(text: str) -> None:
    compile_or_schema_error(text)


@FUZZ
@given(st.one_of(json_value, st.dictionaries(st.sampled_from(
    ["machine", "states", "transitions", "rules", "history", "description", "x"]), json_value)))
def test_any_json_compiles_or_is_a_schema_error(value: Any) -> None:
    compile_or_schema_error(json.dumps(value))


@FUZZ
@given(definitions(), st.lists(st.tuples(st.sampled_from(["create", "t1", "t2", "t3", "t4", "zz"]),
                                         st.dictionaries(st.sampled_from(["a", "b", "c"]),
                                                         json_value, max_size=3)),
                               max_size=6))
def test_generated_machines_and_guard_inputs_never_crash(
    definition: dict[str, Any], moves: list[tuple[str, dict[str, Any]]]
) -> None:
    source = json.dumps(definition)
    machine = compile_or_schema_error(source)
    if machine is None:
        return
    driver = Driver()
    driver.machine("fuzz", source)
    for transition, data in moves:
        started = time.monotonic()
        outcome = driver.run(Transition("fuzz", "o1", transition, data))
        assert time.monotonic() - started < BOUND_SECONDS
        if outcome.error is not None:
            assert outcome.error.code != "internal", outcome.error


@pytest.mark.parametrize("pattern", EVIL_REGEXES)
def test_catastrophic_regex_is_answered_in_linear_time(pattern: str) -> None:
    source = json.dumps({
        "states": {"s": {}},
        "transitions": {"create": {"from": None, "to": "s", "$dst": {"a": {"regex": pattern}}}},
    })
    driver = Driver()
    outcome = driver.run(PutMachine("evil", source))
    assert outcome.ok, outcome.error
    subject = "a" * 50_000 + "!"  # exponential for a backtracking engine
    started = time.monotonic()
    result = driver.run(Transition("evil", "x", "create", {"a": subject}))
    elapsed = time.monotonic() - started
    assert elapsed < BOUND_SECONDS, f"{pattern} took {elapsed:.1f}s"
    assert result.error is None or result.error.code == "guard_failed", result.error


def test_oversized_regex_is_a_schema_error() -> None:
    source = json.dumps({
        "states": {"s": {}},
        "transitions": {"create": {"from": None, "to": "s", "$dst": {"a": {"regex": "a" * 1001}}}},
    })
    with pytest.raises(SchemaError):
        compile_machine(source, name="big")
