"""Fuzzing the cost model against the engine (issue 17): what the checker accepts, the apply affords.

Machines are generated within the limits (then chains, rule sets that `use`
each other, `from: '*'`, `set` templates that copy, hash, hex and convert),
and requests carry hostile payloads (64-bit overflow, deep nesting, long
strings). For every transition request:

- the priced steps the apply counts never exceed the worst case the checker
  computed for that transition (`cost.worst_case`), within MAX_TRANSITION_STEPS;
  with the steps for reading large data, an entry never passes its budget
  (it is refused first, as a whole, with a 4xx);
- whatever was committed encodes and decodes (a snapshot always works).

Derandomized, bounded `max_examples`, so CI time stays fixed.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.core import codec
from cluster.core.entries import PutMachine, Transition
from cluster.core.outcome import Rejected
from cluster.core.state import ClusterState
from cluster.core.transitions import apply_transition_command
from cluster.core.tx import begin_tx
from schema_lang import SchemaError, compile_machine
from schema_lang.cost import worst_case
from schema_lang.limits import MAX_TRANSITION_STEPS
from tests.unit.engine_driver import T0, Driver

FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
STATES = ["s0", "s1", "s2"]
NAMES = ["t1", "t2", "t3", "t4"]
TEMPLATES = ["${src}", "${dst}", "${int(dst.s)}", "${hex(hex(hex(dst.a)))}", "${sha256(src, dst)}",
             "${concat(src.a, src.a, dst.a)}", "${len(src)}", "x${src}y${dst}", "${now}",
             "${upper(dst.a)}", "${object.version}"]

leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=8),
                 st.floats(allow_nan=False, allow_infinity=False))
payload_value = st.recursive(leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "s", "p"]), inner, max_size=3)),
    max_leaves=10)


def deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"p": value}
    return value


payloads = st.one_of(
    st.dictionaries(st.sampled_from(["a", "s", "p", "q"]), payload_value, max_size=3),
    st.builds(lambda n: {"p": deep(n)}, st.integers(1, 80)),
    st.builds(lambda n: {"a": "z" * n}, st.sampled_from([10, 20_000, 70_000])),
    st.builds(lambda s: {"s": s}, st.sampled_from(["12", "9" * 19, "1" * 23, "-5", "x"])),
)


@st.composite
def rule_sets(draw: st.DrawFn) -> dict[str, Any]:
    """r0 … r2, each may use the later ones (no cycles), once or twice."""
    out: dict[str, Any] = {}
    for i in range(3):
        later = [f"r{j}" for j in range(i + 1, 3)]
        uses = draw(st.lists(st.sampled_from(later), max_size=2)) if later else []
        rule: dict[str, Any] = {"type": draw(st.sampled_from(["string", "integer", "object"]))}
        if uses:
            rule = {"any_of": [{"use": u} for u in uses] + [rule]}
        out[f"r{i}"] = rule
    return out


@st.composite
def machines(draw: st.DrawFn) -> dict[str, Any]:
    transitions: dict[str, Any] = {"create": {"from": None, "to": "s0", "data": "replace"}}
    transitions["go1"] = {"from": "s0", "to": "s1"}
    transitions["go2"] = {"from": "s1", "to": "s2"}
    for name in NAMES:
        t: dict[str, Any] = {"from": draw(st.sampled_from(["*", "s0", "s1", "s2"]))}
        if draw(st.booleans()):
            t["to"] = draw(st.sampled_from(STATES))
        if draw(st.booleans()):
            t["$dst"] = {draw(st.sampled_from(["a", "s", "p"])): {"use": draw(st.sampled_from(["r0", "r1", "r2"]))}}
        if draw(st.booleans()):
            t["set"] = {draw(st.sampled_from(["a", "p", "h"])): draw(st.sampled_from(TEMPLATES))}
        t["data"] = draw(st.sampled_from(["merge", "replace", "keep"]))
        steps = draw(st.lists(st.sampled_from(NAMES), max_size=3))
        if steps:
            t["then"] = [{"transition": s, **({"if": {"$src": {"a": {"type": "string"}}}}
                                                if draw(st.booleans()) else {})} for s in steps]
        transitions[name] = t
    return {"machine": "fz", "rules": draw(rule_sets()), "states": {s: {} for s in STATES},
            "transitions": transitions}


@FUZZ
@given(machines(), st.lists(st.tuples(st.sampled_from(NAMES + ["go1", "go2"]), payloads),
                            min_size=1, max_size=6))
def test_apply_stays_within_the_priced_worst_case_and_always_encodes(
    definition: dict[str, Any], requests: list[tuple[str, dict[str, Any]]]
) -> None:
    source = json.dumps(definition)
    try:
        machine = compile_machine(source)
    except SchemaError:
        return  # past a limit (e.g. a then tree too large): refused when put, nothing to run
    worst = worst_case(dict(machine.transitions))
    assert all(steps <= MAX_TRANSITION_STEPS for steps, _ in worst.values())
    driver = Driver(ClusterState())
    driver.machine("fz", source)
    assert driver.move("fz", "o", "create", {}).ok
    for index, (name, payload) in enumerate(requests, start=10):
        tx = begin_tx(driver.state, T0 + index, index)
        try:
            apply_transition_command(tx, Transition("fz", "o", name, payload, None))
        except Rejected as exc:
            assert exc.rejection.code != "internal"
        else:
            tx.commit()
        assert tx.budget.priced <= worst[name][0], (name, tx.budget.priced, worst[name])
        assert tx.budget.used <= tx.budget.limit
        codec.loads(codec.dumps(driver.state))  # a snapshot works after every request


def test_the_generator_reaches_then_chains_and_use() -> None:
    """A fixed machine of the generated shape compiles and has a then tree to price."""
    source = json.dumps({
        "machine": "fz", "rules": {"r0": {"any_of": [{"use": "r1"}, {"use": "r1"}]}, "r1": {"type": "string"}},
        "states": {s: {} for s in STATES},
        "transitions": {"create": {"from": None, "to": "s0"},
                        "t1": {"from": "*", "$dst": {"a": {"use": "r0"}}, "then": [{"transition": "t2"}] * 3},
                        "t2": {"from": "*", "to": "s1"},
                        "t3": {"from": "s1", "to": "s2"}},
    })
    worst = worst_case(dict(compile_machine(source).transitions))
    assert worst["t1"][1] == 4
    driver = Driver()
    assert driver.run(PutMachine("fz", source)).ok
    assert driver.move("fz", "o", "create", {}).ok
    tx = begin_tx(driver.state, T0 + 5, 5)
    apply_transition_command(tx, Transition("fz", "o", "t1", {"a": "x"}, None))
    assert 4 < tx.budget.priced <= worst["t1"][0]
