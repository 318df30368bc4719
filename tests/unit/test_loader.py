"""schema_lang.loader: safe YAML/JSON into Nodes with positions, and every refusal."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schema_lang.errors import Problem, SchemaError
from schema_lang.loader import load
from schema_lang.nodes import Node


def problems_of(source: str | bytes, **limits: int) -> list[Problem]:
    with pytest.raises(SchemaError) as caught:
        load(source, **limits)
    assert caught.value.problems, "a SchemaError must carry at least one problem"
    return caught.value.problems


def only_problem(source: str | bytes, **limits: int) -> Problem:
    problems = problems_of(source, **limits)
    assert len(problems) == 1, problems
    return problems[0]


def test_mapping_values_and_keys_carry_one_based_positions() -> None:
    root = load("machine: lock\nstates:\n  free: {}\n")
    assert (root.line, root.column) == (1, 1)
    assert root.keys == {"machine": (1, 1), "states": (2, 1)}
    machine = root.value["machine"]
    assert (machine.value, machine.line, machine.column) == ("lock", 1, 10)
    states = root.value["states"]
    assert states.keys == {"free": (3, 3)}
    assert (states.value["free"].line, states.value["free"].column) == (3, 9)


def test_sequence_items_carry_positions() -> None:
    root = load("from:\n  - free\n  - held\n")
    items = root.value["from"].value
    assert [(i.value, i.line, i.column) for i in items] == [("free", 2, 5), ("held", 3, 5)]


def test_json_input_is_accepted_with_positions() -> None:
    root = load('{"a": 1, "b": [true, null, 2.5, "x"]}')
    assert root.plain() == {"a": 1, "b": [True, None, 2.5, "x"]}
    assert root.keys["b"] == (1, 10)


def test_bytes_input_is_decoded_as_utf8_and_bom_is_ignored() -> None:
    root = load("\ufeffname: caf\u00e9\n".encode())
    assert root.plain() == {"name": "caf\u00e9"}


def test_invalid_utf8_bytes_are_refused() -> None:
    assert "UTF-8" in only_problem(b"a: \xff\xfe\n").message


def test_scalars_resolve_like_the_safe_loader() -> None:
    root = load("i: 42\nh: 0x1f\nf: 1.5\nb: yes\nn: ~\ns: '42'\n")
    assert root.plain() == {"i": 42, "h": 31, "f": 1.5, "b": True, "n": None, "s": "42"}


def test_dates_stay_strings_because_definitions_are_json_data() -> None:
    assert load("at: 2026-11-22\n").plain() == {"at": "2026-11-22"}


def test_empty_source_is_a_null_node() -> None:
    assert load("") == Node(None, 1, 1)


def test_pcre_tag_becomes_a_tagged_pattern_without_slashes() -> None:
    node = load("regex: !!pcre /^[a-f0-9]{128}$/\n").value["regex"]
    assert (node.value, node.tag, node.line, node.column) == ("^[a-f0-9]{128}$", "pcre", 1, 8)


def test_pcre_pattern_may_contain_slashes() -> None:
    assert load("r: !!pcre /^a/b$/\n").value["r"].value == "^a/b$"


def test_pcre_flags_are_refused_with_a_hint() -> None:
    problem = only_problem("r: !!pcre /^x$/i\n")
    assert (problem.path, problem.line, problem.column) == ("r", 1, 4)
    assert "flags 'i'" in problem.message and "(?i)" in problem.message


def test_alias_is_refused_before_expansion() -> None:
    bomb = "a: [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8)
    )
    # The anchor is written without & so that only the alias itself is at fault.
    problem = problems_of(bomb)[0]
    assert "aliases" in problem.message and (problem.line, problem.column) == (2, 5)


def test_anchor_is_refused_where_it_is_written() -> None:
    problem = only_problem("rules:\n  x: &shared {type: string}\n")
    assert (problem.path, problem.line, problem.column) == ("rules.x", 2, 6)
    assert "anchors (&shared)" in problem.message


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    problem = only_problem("[" * 65 + "]" * 65)
    assert "deeper than 64" in problem.message and problem.column == 65


def test_nesting_at_the_limit_is_accepted() -> None:
    node = load("[" * 64 + "]" * 64)
    depth = 0
    while isinstance(node.value, list):
        depth += 1
        node = node.value[0] if node.value else Node(None, 0, 0)
    assert depth == 64


def test_max_depth_is_configurable() -> None:
    assert "deeper than 2" in only_problem("a: {b: {c: 1}}", max_depth=2).message


@pytest.mark.parametrize(
    "hostile",
    ["[" * 262_000, "- " * 100_000, "{a: " * 60_000, "[" * 5_000 + "]" * 5_000],
    ids=["flow-sequence", "block-sequence", "flow-mapping", "closed-flow"],
)
def test_hostile_deep_nesting_is_one_bounded_refusal_naming_the_limit(hostile: str) -> None:
    # Whichever layer refuses first (our builder or libyaml's own nesting limit), the
    # answer is one problem with a position that names our limit, fast, with no
    # RecursionError escaping.
    started = time.perf_counter()
    problem = only_problem(hostile)
    assert time.perf_counter() - started < 2.0
    assert problem.message == "nesting is deeper than 64 levels"
    assert problem.line >= 1 and problem.column > 64


def test_source_over_the_size_limit_is_refused() -> None:
    assert (
        "larger than the limit of 100 bytes"
        in only_problem("a: " + "x" * 100, max_bytes=100).message
    )


def test_size_limit_counts_utf8_bytes_not_characters() -> None:
    assert "larger than" in only_problem("a: " + "\u00e9" * 60, max_bytes=100).message


def test_integer_mapping_key_is_refused() -> None:
    problem = only_problem("states:\n  1: {}\n")
    assert (problem.path, problem.line, problem.column) == ("states", 2, 3)
    assert "keys must be strings" in problem.message and "quote" in problem.message


def test_boolean_mapping_key_is_refused() -> None:
    assert "boolean" in only_problem("on: 1\n").message


def test_collection_mapping_key_is_refused() -> None:
    assert "keys must be strings" in only_problem("? [a]\n: 1\n").message


def test_duplicate_key_is_refused_at_the_second_key() -> None:
    problem = only_problem("a: 1\nb: 2\na: 3\n")
    assert (problem.path, problem.line, problem.column) == ("a", 3, 1)
    assert "duplicate key 'a'" in problem.message and "line 1" in problem.message


def test_every_duplicate_and_bad_key_is_reported_at_once() -> None:
    problems = problems_of("a: 1\na: 2\n1: x\nb: {c: 1, c: 2}\n")
    assert [(p.path, p.line) for p in problems] == [("a", 2), ("", 3), ("b.c", 4)]


def test_second_document_is_refused() -> None:
    problem = only_problem("a: 1\n---\nb: 2\n")
    assert "one YAML document" in problem.message and problem.line == 2


def test_syntax_error_has_its_position() -> None:
    problem = only_problem("a: [1, 2\nb: 3\n")
    assert problem.message.startswith("not valid YAML")
    assert problem.line == 2


def test_tab_indentation_error_says_so() -> None:
    assert "tab" in only_problem("a:\n\tb: 1\n").message


def test_control_character_is_refused_with_position() -> None:
    problem = only_problem("a: b\nc: \x07\n")
    assert (problem.line, problem.column) == (2, 4) and "#x0007" in problem.message


def test_non_finite_number_is_refused() -> None:
    assert "not a JSON number" in only_problem("max: .inf\n").message


def test_unsupported_tag_is_refused() -> None:
    assert "!!binary" in only_problem("x: !!binary aGVsbG8=\n").message


def test_python_tags_are_refused_not_executed() -> None:
    problems = problems_of("x: !!python/object/apply:os.system ['true']\n")
    assert any("unsupported tag" in p.message for p in problems)


def test_huge_integer_is_a_problem_not_a_crash() -> None:
    assert "not a usable !!int" in only_problem("x: 1" + "0" * 5000 + "\n").message


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab:-[]{}&*!,'\"\n #|>?%@`\t0123456789.~", max_size=120))
def test_arbitrary_text_loads_or_raises_schema_error(text: str) -> None:
    try:
        load(text)
    except SchemaError as exc:
        assert all(p.line >= 0 and p.column >= 0 for p in exc.problems)
