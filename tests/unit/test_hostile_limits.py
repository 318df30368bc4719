"""Hostile input (issue 17, items 1-8): the cost model, the step budget and the data limits.

Each test builds the few-hundred-byte definition or request that used to hurt
the cluster and checks that it is now refused with a 4xx that names the limit,
cheaply, and that nothing it touched stopped encoding (snapshots).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import orjson
import pytest

from cluster.__main__ import main
from cluster.core import codec
from cluster.core.entries import Batch, PutMachine, TaskReport, Transition
from cluster.core.limits import MAX_ERROR_CHARS
from schema_lang import SchemaError, compile_machine, render_dot, render_mermaid
from schema_lang.cost import worst_case
from schema_lang.limits import (
    MAX_DATA_BYTES,
    MAX_EDGES,
    MAX_ENTRY_STEPS,
    MAX_PROBLEMS,
    MAX_RULE_CHECKS,
    MAX_THEN_TRANSITIONS,
)
from tests.unit.engine_driver import Driver


def problems_of(source: str) -> list[str]:
    with pytest.raises(SchemaError) as info:
        compile_machine(source)
    return [p.message for p in info.value.problems]


def fanout(levels: int, width: int) -> str:
    """t0 … t{levels-1}: each chains `width` times to the next (issue item 1)."""
    lines = ["machine: fan", "states: {a: {}}", "transitions:", "  create: {from: null, to: a}"]
    for i in range(levels):
        then = ", ".join([f"{{transition: t{i + 1}}}"] * width) if i + 1 < levels else ""
        lines.append(f"  t{i}: {{from: a, then: [{then}]}}")
    return "\n".join(lines) + "\n"


def use_chain(levels: int) -> str:
    """r0 uses r1 twice, r1 uses r2 twice, …: 2^levels rule checks (item 2)."""
    lines = ["machine: rules", "rules:"]
    for i in range(levels):
        inner = f"{{all_of: [{{use: r{i + 1}}}, {{use: r{i + 1}}}]}}" if i + 1 < levels else "{type: string}"
        lines.append(f"  r{i}: {inner}")
    lines += ["states: {a: {}}", "transitions:", "  create: {from: null, to: a, $dst: {v: {use: r0}}}"]
    return "\n".join(lines) + "\n"


def star(states: int, transitions: int) -> str:
    lines = ["machine: big", "states:", *[f"  s{i}: {{}}" for i in range(states)]]
    lines += ["transitions:", "  create: {from: null, to: s0}"]
    lines += [f"  t{i}: {{from: '*', to: s{i % states}}}" for i in range(transitions)]
    return "\n".join(lines) + "\n"


# -- 1. then fan-out -----------------------------------------------------------


def test_then_fanout_is_refused_when_put_naming_the_limit() -> None:
    assert len(fanout(10, 3)) < 1000
    started = time.perf_counter()
    messages = problems_of(fanout(10, 3))
    assert time.perf_counter() - started < 2.0
    assert any("then tree" in m and f"{MAX_THEN_TRANSITIONS:,}" in m for m in messages), messages


def test_a_small_then_tree_is_accepted_and_priced() -> None:
    machine = compile_machine(fanout(3, 2))
    steps, count = worst_case(dict(machine.transitions))["t0"]
    assert count == 1 + 2 + 4
    assert steps >= count


# -- 2. use expansion ------------------------------------------------------------


def test_rule_sets_using_each_other_are_refused_by_their_expanded_size() -> None:
    started = time.perf_counter()
    messages = problems_of(use_chain(20))
    assert time.perf_counter() - started < 2.0
    assert any("expands to" in m and f"{MAX_RULE_CHECKS:,}" in m for m in messages), messages
    compile_machine(use_chain(5))  # 2^5 checks: fine


# -- 3. states x transitions -------------------------------------------------------


def test_states_times_star_transitions_are_bounded_and_cheap_to_refuse() -> None:
    source = star(1000, 1000)
    started = time.perf_counter()
    messages = problems_of(source)
    assert time.perf_counter() - started < 3.0
    assert any(f"{MAX_EDGES:,}" in m and "states x transitions" in m for m in messages), messages


def test_too_many_states_is_refused() -> None:
    messages = problems_of(star(1500, 1))
    assert any("states; the limit is 1,000" in m for m in messages), messages


# -- 4. bounded error bodies and hints ---------------------------------------------


def test_thousands_of_unknown_states_give_a_bounded_answer_quickly() -> None:
    lines = ["machine: typos", "states:", *[f"  state{i}: {{}}" for i in range(900)]]
    lines += ["transitions:", "  create: {from: null, to: state0}"]
    lines += [f"  t{i}: {{from: state0, to: stat{i}x}}" for i in range(2000)]
    started = time.process_time()  # CPU time: a busy machine must not fail the bound
    with pytest.raises(SchemaError) as info:
        compile_machine("\n".join(lines) + "\n")
    took = time.process_time() - started
    details = [p.as_detail() for p in info.value.problems]
    assert took < 3.0
    assert len(details) == MAX_PROBLEMS + 1
    assert "more problem(s) not listed" in details[-1]["message"]
    assert len(orjson.dumps(details)) < 100_000
    assert any("did you mean" in d["message"] for d in details)  # the first ones get hints


# -- 5. diagrams -------------------------------------------------------------------


def test_diagram_of_a_machine_at_the_edge_limit_is_bounded() -> None:
    machine = compile_machine(star(100, 100))  # 10,000 expanded edges: at the limit
    started = time.perf_counter()
    text = render_mermaid(machine) + render_dot(machine)
    assert time.perf_counter() - started < 2.0
    assert len(text) < 1_500_000


# -- 6-8. nothing unencodable is committed ---------------------------------------------

COUNTER = """
machine: c
states: {a: {}}
transitions:
  create: {from: null, to: a, data: replace}
  big: {from: a, set: {n: '${int(dst.s)}'}}
  nest: {from: a, set: {p: '${src}'}}
  merge: {from: a}
  note: {from: a, data: keep}
  grow: {from: a, set: {h: '${hex(hex(hex(hex(hex(hex(hex(hex(hex(hex(hex(hex(hex(hex(hex(hex(hex(hex(dst.x))))))))))))))))))}'}}
"""


@pytest.fixture
def counter() -> Driver:
    driver = Driver()
    driver.machine("c", COUNTER)
    assert driver.move("c", "o", "create", {}).ok
    return driver


def assert_unchanged_and_encodes(driver: Driver, before: bytes) -> None:
    after = driver.snapshot()
    assert orjson.loads(after)["objects"] == orjson.loads(before)["objects"]
    codec.loads(after)


def test_int_template_past_64_bits_is_refused(counter: Driver) -> None:
    before = counter.snapshot()
    outcome = counter.move("c", "o", "big", {"s": "1" * 23})
    assert outcome.error is not None and outcome.error.code == "guard_failed", outcome
    assert "2^63" in outcome.error.message
    assert_unchanged_and_encodes(counter, before)
    assert counter.move("c", "o", "big", {"s": "12"}).ok


def test_set_that_nests_the_data_deeper_each_time_stops_at_the_nesting_limit(counter: Driver) -> None:
    refused = None
    for _ in range(80):
        outcome = counter.move("c", "o", "nest", {})
        if not outcome.ok:
            refused = outcome
            break
    assert refused is not None and refused.error is not None
    assert refused.error.code == "invalid_request" and "nesting limit" in refused.error.message
    codec.loads(counter.snapshot())


def test_merged_payloads_cannot_outgrow_the_data_limit(counter: Driver) -> None:
    statuses = []
    for i in range(8):
        outcome = counter.move("c", "o", "merge", {f"k{i}": "x" * 60_000})
        statuses.append(outcome.error.code if outcome.error else "ok")
    assert statuses[0] == "ok" and "payload_too_large" in statuses, statuses
    record = counter.state.get_object("c", "o")
    assert record is not None and len(orjson.dumps(record.data)) <= MAX_DATA_BYTES
    codec.loads(counter.snapshot())


def test_hex_nesting_cannot_blow_a_tiny_payload_up(counter: Driver) -> None:
    before = counter.snapshot()
    started = time.perf_counter()
    outcome = counter.move("c", "o", "grow", {"x": "ab"})
    assert time.perf_counter() - started < 1.0
    assert outcome.error is not None and "limit" in outcome.error.message, outcome
    assert_unchanged_and_encodes(counter, before)


def test_request_data_past_the_limits_is_refused_by_the_apply(counter: Driver) -> None:
    deep: dict = {}
    for _ in range(70):
        deep = {"d": deep}
    for data, code in (({"n": 2**64}, "invalid_request"), (deep, "invalid_request"),
                       ({"s": "x" * (MAX_DATA_BYTES + 1)}, "payload_too_large")):
        for transition in ("merge", "note"):  # note keeps the data: only the payload is checked
            outcome = counter.move("c", "o", transition, data)
            assert outcome.error is not None and outcome.error.code == code, (code, outcome)
    codec.loads(counter.snapshot())


def test_huge_integers_in_a_definition_are_problems_not_crashes() -> None:
    for literal in ("18446744073709551616", "-9223372036854775809", "9" * 5000):
        source = f"machine: m\nstates: {{a: {{}}}}\ntransitions:\n  create: {{from: null, to: a, $dst: {{v: {{const: {literal}}}}}}}\n"
        messages = problems_of(source)
        assert any("2^63" in m or "not a usable" in m for m in messages), messages
    messages = problems_of(
        "machine: m\nstates: {a: {}}\ntransitions:\n"
        "  create: {from: null, to: a, set: {v: '${int(99999999999999999999999)}'}}\n"
    )
    assert any("2^63" in m for m in messages), messages


TASKS = """
machine: job
states:
  run: {tasks: [{name: work}]}
  done: {}
transitions:
  create: {from: null, to: run}
  next: {from: run, to: done}
"""


def test_task_error_text_is_bounded() -> None:
    driver = Driver()
    driver.machine("job", TASKS)
    assert driver.move("job", "j", "create").ok
    outcome = driver.run(TaskReport("job", "j", "work", "failed", "e" * (MAX_ERROR_CHARS + 1), None))
    assert outcome.error is not None and outcome.error.code == "payload_too_large"
    assert driver.run(TaskReport("job", "j", "work", "failed", "short", None)).ok


# -- the step budget -------------------------------------------------------------------


def test_a_batch_past_the_step_budget_is_refused_whole() -> None:
    driver = Driver()
    driver.machine("fan", fanout(4, 4))  # 85 transitions per request: within the then limit
    steps, _ = worst_case(dict(compile_machine(fanout(4, 4)).transitions))["t0"]
    assert driver.move("fan", "o", "create").ok
    before = driver.snapshot()
    ops = [Transition("fan", "o", "t0", None, None)] * (MAX_ENTRY_STEPS // steps + 2)
    outcome = driver.run(Batch(tuple(ops), atomic=False))
    assert outcome.error is not None and outcome.error.code == "invalid_request"
    assert "step budget" in outcome.error.message
    assert_unchanged_and_encodes(driver, before)
    assert driver.run(Batch(tuple(ops[:10]), atomic=False)).ok


def test_put_machine_in_the_apply_refuses_past_a_limit() -> None:
    outcome = Driver().run(PutMachine("fan", fanout(10, 3)))
    assert outcome.error is not None and outcome.error.code == "invalid_schema"
    assert "then tree" in outcome.error.message


def test_schema_check_reports_a_huge_integer_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("machine: m\nstates: {a: {}}\ntransitions:\n"
                    "  create: {from: null, to: a, $dst: {v: {const: 18446744073709551616}}}\n")
    assert main(["schema", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:4:" in out and "2^63" in out and "Traceback" not in out


def heavy_rules(count: int) -> str:
    """One transition whose guard runs `count` regex + matches checks on the same field."""
    rules = "\n".join(f"  r{i}: {{regex: 'a[bc]+d{i}$', matches: '${{dst.v}}'}}" for i in range(count))
    uses = ", ".join(f"{{use: r{i}}}" for i in range(count))
    return (f"machine: heavy\nrules:\n{rules}\n  all: {{all_of: [{uses}]}}\nstates: {{a: {{}}}}\n"
            "transitions:\n  create: {from: null, to: a}\n  check: {from: a, $dst: {v: {use: all}}}\n")


def test_rule_checks_on_large_data_are_charged_by_size() -> None:
    """Priced steps alone would let ~100 of these 80 ms requests into one entry (8 s)."""
    driver = Driver()
    driver.machine("heavy", heavy_rules(300))
    assert driver.move("heavy", "o", "create").ok
    data = {"v": "a" + "b" * 60_000}
    one = driver.move("heavy", "o", "check", data)  # alone it fits (the guard fails)
    assert one.error is not None and one.error.code == "guard_failed"
    steps, _ = worst_case(dict(compile_machine(heavy_rules(300)).transitions))["check"]
    ops = (Transition("heavy", "o", "check", data, None),) * (MAX_ENTRY_STEPS // (steps + 1) - 1)
    started = time.perf_counter()
    outcome = driver.run(Batch(ops, atomic=False))
    assert outcome.error is not None and "step budget" in outcome.error.message
    assert time.perf_counter() - started < 5.0


def test_max_data_bytes_cannot_exceed_what_every_apply_enforces(tmp_path: Path) -> None:
    from cluster.config import Settings, SettingsError

    base = Settings(raft="127.0.0.1:1", http="127.0.0.1:2", data_dir=tmp_path)
    dataclasses.replace(base, max_data_bytes=1024).validate()  # stricter: fine
    with pytest.raises(SettingsError, match="max-data-bytes"):
        dataclasses.replace(base, max_data_bytes=MAX_DATA_BYTES + 1).validate()
