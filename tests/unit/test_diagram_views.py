"""An object drawn on its machine (issue 16): marks from its history, the SVG picture,
and the state reads the dashboard pages on (id prefix, objects per state)."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET

import pytest

from cluster.core.records import ObjectRecord
from cluster.core.state import ClusterState
from schema_lang import compile_machine, example_names, load_example, render_dot, render_mermaid
from schema_lang.diagrams import marks_from_history
from schema_lang.svg import render_svg

LOCK_PATH = [
    {"kind": "created", "from": None, "to": "free", "transition": "create"},
    {"kind": "transition", "from": "free", "to": "held", "transition": "acquire"},
    {"kind": "transition", "from": "held", "to": "held", "transition": "renew"},
    {"kind": "vote", "from": "held", "to": "held", "transition": "renew"},  # not a move
    {"kind": "transition", "from": "held", "to": "free", "transition": "release"},
    {"kind": "transition", "from": "free", "to": "held", "transition": "acquire"},
    {"kind": "transition", "from": "free", "to": "held", "transition": "not-a-transition"},
]


def lock():  # type: ignore[no-untyped-def]
    return compile_machine(load_example("lock"))


def test_marks_number_each_move_on_its_edge() -> None:
    marks = marks_from_history(lock(), "held", LOCK_PATH)
    assert [m[2] for m in marks.path] == ["create", "acquire", "renew", "release", "acquire"]
    assert {(e.source, e.target, e.label): n for e, n in marks.steps.items()} == {
        (None, "free", "create"): (1,), ("free", "held", "acquire"): (2, 5),
        ("held", "held", "renew"): (3,), ("held", "free", "release"): (4,),
    }
    assert marks.visited == {"free", "held"}


def test_mermaid_and_dot_show_the_marks() -> None:
    marks = marks_from_history(lock(), "held", LOCK_PATH)
    mermaid = render_mermaid(lock(), marks)
    assert "free --> held: acquire #2,5" in mermaid and "held --> free: expire\n" in mermaid
    assert "class held current" in mermaid and "class free visited" in mermaid
    dot = render_dot(lock(), marks)
    assert '"held" [label="held", style="rounded,filled", fillcolor="#fde68a"' in dot
    assert '"free" -> "held" [label="acquire #2,5", color="#2563eb"' in dot
    assert render_mermaid(lock(), None) == render_mermaid(lock())


def test_many_moves_on_one_edge_stay_short() -> None:
    moves = [{"kind": "transition", "from": "held", "to": "held", "transition": "renew"}] * 40
    marks = marks_from_history(lock(), "held", moves)
    assert "held --> held: renew #1,2,3… (40×)" in render_mermaid(lock(), marks)


@pytest.mark.parametrize("name", example_names())
def test_svg_is_well_formed_deterministic_and_has_every_state(name: str) -> None:
    machine = compile_machine(load_example(name))
    svg = render_svg(machine, counts={s: 7 for s in machine.states})
    assert svg == render_svg(machine, counts={s: 7 for s in machine.states})
    root = ET.fromstring(svg)
    drawn = {g.get("data-state") for g in root.iter("{http://www.w3.org/2000/svg}g")
             if g.get("class", "").startswith("state")}
    assert drawn == set(machine.states)
    width, height = float(root.get("width", 0)), float(root.get("height", 0))
    for x, y in re.findall(r'<text x="([-\d.]+)" y="([-\d.]+)"', svg):
        assert 0 <= float(x) <= width and 0 <= float(y) <= height, (name, x, y)


def test_svg_of_a_machine_at_the_edge_limit_is_bounded() -> None:
    # 1,000 states in a chain and 9 `from: '*'` transitions: ~10,000 edges (MAX_EDGES)
    lines = ["machine: big", "states:", *[f"  s{i}: {{}}" for i in range(1000)], "transitions:",
             "  create: {from: null, to: s0}", *[f"  t{i}: {{from: s{i}, to: s{i + 1}}}" for i in range(999)],
             *[f"  x{i}: {{from: '*', to: s{i * 97}}}" for i in range(9)]]
    machine = compile_machine("\n".join(lines) + "\n")
    started = time.perf_counter()
    svg = render_svg(machine, counts={"s0": 1})
    assert time.perf_counter() - started < 2.0  # ~0.3 s here (1.4 s when each state scanned every edge)
    assert svg.count('class="state') == 1000


def test_svg_draws_names_with_every_allowed_character() -> None:
    name = "a.b_c~d:e@f-g"
    source = (f"machine: m\nstates:\n  '{name}': {{}}\n  done: {{terminal: true}}\n"
              f"transitions:\n  create: {{from: null, to: '{name}'}}\n  finish: {{from: '{name}', to: done}}\n")
    root = ET.fromstring(render_svg(compile_machine(source)))
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {name, "done", "create", "finish"} <= texts


def test_svg_marks_current_visited_and_taken() -> None:
    svg = render_svg(lock(), marks_from_history(lock(), "held", LOCK_PATH))
    assert '<g class="state current" data-state="held">' in svg
    assert '<g class="state visited" data-state="free">' in svg
    assert 'class="edge taken" data-from="free" data-to="held"' in svg
    assert 'class="edge" data-from="free" data-to="gone"' in svg


def record(oid: str, state: str) -> ObjectRecord:
    return ObjectRecord(machine="m", id=oid, revision="r", state=state, previous_state=None, data={},
                        version=1, generation=1, pending=None, tasks=(), created_at_ms=0,
                        updated_at_ms=0, expires_at_ms=None, index=1, applied=())


def test_list_by_id_prefix_starts_at_the_prefix_and_stops_after_it() -> None:
    state = ClusterState()
    for oid in ("a-1", "b-1", "b-2", "b-3", "ba", "c-1"):
        state.put_object(("m", oid), record(oid, "x" if oid != "b-2" else "y"))
    ids = lambda page: [r.id for r in page[0]]  # noqa: E731
    assert ids(state.list_objects("m", prefix="b-")) == ["b-1", "b-2", "b-3"]
    assert state.list_objects("m", prefix="b-", limit=2)[1] == "b-2"
    assert ids(state.list_objects("m", prefix="b-", after="b-2")) == ["b-3"]
    assert ids(state.list_objects("m", prefix="b-", after="a-9")) == ["b-1", "b-2", "b-3"]
    assert ids(state.list_objects("m", prefix="b-", state="y")) == ["b-2"]
    assert ids(state.list_objects("m", prefix="b-", after="b-3")) == []
    assert ids(state.list_objects("m", prefix="z")) == []
    assert state.state_counts("m") == {"x": 5, "y": 1}
    assert state.state_counts("none") == {}
