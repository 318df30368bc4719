"""Mermaid and DOT renderings: every transition labelled, votes marked, output deterministic."""

from __future__ import annotations

import json
import re

import pytest

from schema_lang import compile_machine, example_names, load_example, render_dot, render_mermaid
from schema_lang.diagrams import VOTE_MARK
from schema_lang.loader import load


def machine(name: str):  # type: ignore[no-untyped-def]
    return compile_machine(load_example(name))


def test_mermaid_of_the_lock_has_every_edge() -> None:
    text = render_mermaid(machine("lock"))
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    for edge in (
        "[*] --> free: create",
        "free --> held: acquire",
        "held --> held: renew",
        "held --> free: release",
        "held --> free: expire",
        "free --> gone: destroy",
        "held --> gone: destroy",
        "gone --> [*]",
    ):
        assert f"    {edge}" in lines, edge


def test_mermaid_expands_any_source_to_non_terminal_states() -> None:
    lines = render_mermaid(machine("task")).splitlines()
    revise = sorted(line.strip().split(" --> ")[0] for line in lines if line.endswith(": revise"))
    assert revise == ["assigned", "created", "scheduled", "started"]
    assert not any(
        line.strip().startswith(("canceled --> created", "completed --> created")) for line in lines
    )


def test_voted_transitions_are_marked() -> None:
    approval = machine("approval")
    assert f"    pending --> approved: approve {VOTE_MARK}" in render_mermaid(approval).splitlines()
    dot = render_dot(approval)
    assert f'"pending" -> "approved" [label="approve {VOTE_MARK}", style=dashed];' in dot
    assert f"reject {VOTE_MARK}" not in dot


def test_state_names_mermaid_cannot_use_get_an_alias() -> None:
    source = load_example("lock").replace("held", "in-use")
    text = render_mermaid(compile_machine(source))
    assert '    state "in-use" as s_in_use' in text.splitlines()
    assert "    free --> s_in_use: acquire" in text.splitlines()
    keyword = render_mermaid(compile_machine(load_example("lock").replace("free", "end")))
    assert '    state "end" as s_end' in keyword.splitlines()
    assert "    [*] --> s_end: create" in keyword.splitlines()


@pytest.mark.parametrize("name", example_names())
def test_every_transition_name_is_a_label(name: str) -> None:
    m = machine(name)
    mermaid, dot = render_mermaid(m), render_dot(m)
    for transition in m.transitions:
        assert re.search(rf": {re.escape(transition)}( {VOTE_MARK})?$", mermaid, re.M), transition
        assert f'[label="{transition}' in dot, transition


@pytest.mark.parametrize("name", example_names())
def test_rendering_does_not_depend_on_the_order_of_the_definition(name: str) -> None:
    data = load(load_example(name)).plain()
    data["states"] = dict(reversed(list(data["states"].items())))
    data["transitions"] = dict(reversed(list(data["transitions"].items())))
    first, reordered = machine(name), compile_machine(json.dumps(data))
    assert list(first.transitions) != list(reordered.transitions)
    assert first.revision == reordered.revision
    assert render_mermaid(first) == render_mermaid(reordered)
    assert render_dot(first) == render_dot(reordered)
    assert render_mermaid(first) == render_mermaid(machine(name))


def test_dot_is_a_quoted_digraph() -> None:
    dot = render_dot(machine("deploy"))
    assert dot.startswith('digraph "deploy" {\n') and dot.endswith("}\n")
    assert '"[start]" -> "init" [label="launch"];' in dot
    assert '"provision" -> "running" [label="next"];' in dot
    assert '"teardown" -> "destroyed" [label="next"];' in dot
    assert '"destroyed" -> "[end]";' in dot
    assert '"destroyed" [label="destroyed", peripheries=2];' in dot
    assert dot.count("{") == dot.count("}")


def test_dot_escapes_quotes_in_identifiers() -> None:
    from schema_lang.diagrams import _quote

    assert _quote('a"b\\c') == '"a\\"b\\\\c"'
