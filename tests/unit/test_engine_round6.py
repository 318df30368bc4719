"""What round six's speed-ups of the apply must not change.

The candidates a transition chooses from come from a table built once per compiled
revision (`MachineDef.leaving`): it must hold what `choose` worked out before, and a
new revision of a machine must bring its own table (objects pinned to the old one
keep theirs). A batch's operations read the objects earlier operations staged. A
value-only rule remembers its passes only when one of its keywords is worth it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import schema_lang
from cluster.core.entries import Batch, Transition
from schema_lang import compile_machine, load_example
from schema_lang.model import MachineDef, TransitionDef
from schema_lang.rule_keywords import MEMO

from .engine_driver import LOCK, Driver
from .test_engine_round4 import _condition, _failures

EXAMPLES = sorted(p.stem for p in (Path(schema_lang.__file__).parent / "machines").glob("*.yaml"))
# several candidates of one name, `from: '*'`, a terminal state
BRANCHES = """
machine: branches
states: {a: {}, b: {}, c: {}, end: {terminal: true}}
transitions:
  create: {from: null, to: a}
  go:
    - {from: a, to: b, $dst: {fast: {const: true}}}
    - {from: [a, b], to: c}
  stop: {from: '*', to: end}
"""


def _leaving_as_choose_found_it(
    machine: MachineDef, name: str, state: str | None
) -> tuple[TransitionDef, ...] | None:
    """What `choose` selected before the table: None where it refused."""
    defs = machine.transitions[name]
    terminal = state is not None and machine.states[state].terminal
    if terminal:
        return None
    return tuple(d for d in defs if d.leaves(state, terminal)) or None


@pytest.mark.parametrize("example", [*EXAMPLES, "branches"])
def test_the_leaving_table_holds_what_choose_selected(example: str) -> None:
    source = BRANCHES if example == "branches" else load_example(example)
    machine = compile_machine(source, example)
    for name in machine.transitions:
        for state in (None, *machine.states):
            assert machine.leaving.get((name, state)) == _leaving_as_choose_found_it(
                machine, name, state), (name, state)


TWO_WAYS = """
machine: road
states: {a: {}, %s: {}}
transitions:
  create: {from: null, to: a}
  go: {from: a, to: %s}
"""


def test_a_new_revision_brings_its_own_candidates() -> None:
    """The table and the compiled machine are per revision: an object created under the
    first revision keeps its candidates, one created under the second takes the new ones."""
    d = Driver()
    d.machine("road", TWO_WAYS % ("b", "b"))
    assert d.move("road", "old", "create").ok
    d.machine("road", TWO_WAYS % ("c", "c"))
    assert d.move("road", "new", "create").ok
    assert d.move("road", "old", "go").body["object"]["state"] == "b"
    assert d.move("road", "new", "go").body["object"]["state"] == "c"


def test_a_refusal_still_names_what_would_apply() -> None:
    d = Driver()
    d.machine("lock", LOCK)
    refused = d.move("lock", "a", "acquire", {"owner": "w1"})
    assert refused.error is not None and refused.error.code == "object_not_found"
    assert d.move("lock", "a", "create").ok
    refused = d.move("lock", "a", "release", {"owner": "w1"})
    assert refused.error is not None and refused.error.code == "transition_not_allowed"
    assert refused.error.message == (
        "transition 'release' is not allowed from state 'free' (allowed: acquire, destroy)")


def test_a_batch_reads_what_its_earlier_operations_staged() -> None:
    """No machine is staged (the objects exist): each operation must still see the record
    the one before it staged, not the state's."""
    d = Driver()
    d.machine("lock", LOCK)
    assert d.move("lock", "a", "create").ok
    ops = (Transition("lock", "a", "acquire", {"owner": "w1"}),
           Transition("lock", "a", "release", {"owner": "w1"}, 2),
           Transition("lock", "a", "acquire", {"owner": "w2"}))
    outcome = d.run(Batch(ops))
    assert [r.status for r in outcome.results] == ["applied", "applied", "applied"]
    assert [r.record.version for r in outcome.results] == [2, 3, 4]
    assert d.obj("lock", "a")["data"] == {"owner": "w2"}  # type: ignore[index]


def test_a_rule_of_cheap_keywords_is_run_not_remembered() -> None:
    """type, bounds and lengths cost less than the memo's lookup and insert: a pass of
    such a rule leaves the memo as it was; a rule with a regex remembers it."""
    cheap, worth = _condition("x: {type: string, max_length: 9}"), _condition("x: {use: a}")
    assert _failures(cheap, {"x": "cheap-1"}) == []
    assert not any(text == "cheap-1" for _, text in MEMO)
    assert [r for _, r, _ in _failures(cheap, {"x": "far too long"})] == ["max_length"]
    assert _failures(worth, {"x": "a-worth-1"}) == []
    assert any(text == "a-worth-1" for _, text in MEMO)
