"""schema_lang.conditions: one test per rule keyword, per combination and per problem."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schema_lang.conditions import CompileContext, compile_condition, compile_requires
from schema_lang.errors import Problem, SchemaError
from schema_lang.loader import load
from schema_lang.model import Condition, EvalContext, GuardFailure, ObjectView

ROOT_BLOCK_RULE = """
rootBlock:
  required: true
  type: string
  $vars:
    firstHalf: substr(0,64)
  matches: "${vars.firstHalf}${vars.firstHalf}"
  regex: !!pcre /^[a-f0-9]{128}$/
"""


def context(dst: dict[str, Any] | None = None, src: dict[str, Any] | None = None) -> EvalContext:
    return EvalContext(
        dst=dst if dst is not None else {},
        src=src if src is not None else {},
        obj=ObjectView("o-1", 1, "free"),
        now="2026-11-22T07:00:00.000Z",
    )


def compiled(yaml_text: str, side: str = "$dst", rules: str = "") -> Condition:
    ctx = CompileContext(load(rules).value if rules else {}, [])
    condition = compile_condition(load(yaml_text), ctx, "t.cond", side=side)
    assert ctx.problems == []
    assert condition is not None
    return condition


def problems(yaml_text: str, rules: str = "") -> list[Problem]:
    ctx = CompileContext(load(rules).value if rules else {}, [])
    condition = compile_condition(load(yaml_text), ctx, "t.cond", side="$dst")
    assert ctx.problems, "expected at least one problem"
    assert condition is None
    return ctx.problems


def failures(yaml_text: str, dst: dict[str, Any], **kw: Any) -> list[GuardFailure]:
    src = kw.pop("src", None)
    return compiled(yaml_text, **kw)(context(dst, src))


def rules_of(found: list[GuardFailure]) -> list[str]:
    return [f.rule for f in found]


# ---- required and absent fields ------------------------------------------------


def test_required_field_that_is_absent_fails_with_an_actionable_message() -> None:
    assert failures("owner: {required: true}", {}) == [
        GuardFailure("$dst.owner", "required", "$dst.owner is required")
    ]


def test_required_false_lets_an_absent_field_pass() -> None:
    assert failures("owner: {required: false, type: string}", {}) == []


def test_rules_other_than_required_are_skipped_for_absent_fields() -> None:
    assert (
        failures("n: {type: integer, min: 3, regex: x, not: {const: 1}, any_of: [{const: 2}]}", {})
        == []
    )


def test_null_value_is_present() -> None:
    assert rules_of(failures("n: {required: true, type: string}", {"n": None})) == ["type"]


# ---- type ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "good", "bad"),
    [
        ("string", "x", 1),
        ("integer", 3, 3.5),
        ("number", 3.5, "3"),
        ("boolean", False, 0),
        ("object", {"a": 1}, [1]),
        ("array", [1], {"a": 1}),
        ("null", None, "null"),
    ],
)
def test_type_accepts_its_type_and_refuses_others(type_name: str, good: Any, bad: Any) -> None:
    rule = f"v: {{type: {type_name}}}"
    assert failures(rule, {"v": good}) == []
    assert rules_of(failures(rule, {"v": bad})) == ["type"]


def test_boolean_is_not_an_integer() -> None:
    found = failures("v: {type: integer}", {"v": True})
    assert found[0].message == "$dst.v must be of type integer (got boolean true)"


def test_integer_counts_as_a_number() -> None:
    assert failures("v: {type: number}", {"v": 3}) == []


def test_integral_float_is_not_an_integer() -> None:
    assert rules_of(failures("v: {type: integer}", {"v": 3.0})) == ["type"]


def test_unquoted_yaml_null_names_the_null_type() -> None:
    assert failures("v: {type: null}", {"v": None}) == []


def test_type_list_accepts_any_listed_type() -> None:
    rule = "v: {type: [string, 'null']}"
    assert failures(rule, {"v": None}) == [] and failures(rule, {"v": "x"}) == []
    assert "one of string, null" in failures(rule, {"v": 1})[0].message


# ---- regex --------------------------------------------------------------------


def test_regex_failure_message_names_pattern_and_value() -> None:
    found = failures("owner: {regex: '^[a-z0-9-]{1,64}$'}", {"owner": "Bob!"})
    assert found == [
        GuardFailure("$dst.owner", "regex", "$dst.owner must match ^[a-z0-9-]{1,64}$ (got 'Bob!')")
    ]


def test_regex_uses_search_semantics() -> None:
    assert failures("s: {regex: 'b+'}", {"s": "abbbc"}) == []


def test_regex_refuses_non_string_values() -> None:
    assert rules_of(failures("s: {regex: '1'}", {"s": 1})) == ["regex"]


def test_pcre_tagged_regex_is_accepted() -> None:
    rule = "s:\n  regex: !!pcre /^[a-f0-9]{4}$/\n"
    assert failures(rule, {"s": "beef"}) == [] and rules_of(failures(rule, {"s": "BEEF"})) == [
        "regex"
    ]


def test_catastrophic_pattern_is_answered_in_linear_time() -> None:
    # A backtracking engine takes exponential time here; RE2 answers at once.
    found = failures("s: {regex: '(a+)+$'}", {"s": "a" * 50_000 + "!"})
    assert rules_of(found) == ["regex"]
    assert failures("s: {regex: '(a+)+$'}", {"s": "a" * 50_000}) == []


def test_bad_regex_is_a_problem_at_its_position() -> None:
    (problem,) = problems("s: {regex: '(unclosed'}")
    assert (problem.path, problem.line, problem.column) == ("t.cond.s.regex", 1, 12)
    assert "bad regex" in problem.message


def test_lookaround_is_refused_because_re2_has_none() -> None:
    assert "RE2" in problems("s: {regex: '(?=a)'}")[0].message


def test_regex_longer_than_the_limit_is_a_problem() -> None:
    ctx = CompileContext({}, [], regex_max=10)
    compile_condition(load("s: {regex: 'aaaaaaaaaaa'}"), ctx, "p", side="$dst")
    assert "limit is 10" in ctx.problems[0].message


# ---- enum, const, bounds, lengths -----------------------------------------------


def test_enum_lists_the_allowed_values() -> None:
    found = failures("c: {enum: [red, green]}", {"c": "blue"})
    assert found[0].message == "$dst.c must be one of 'red', 'green' (got 'blue')"
    assert failures("c: {enum: [red, green]}", {"c": "red"}) == []


def test_enum_does_not_confuse_true_with_one() -> None:
    assert rules_of(failures("c: {enum: [1, 2]}", {"c": True})) == ["enum"]


def test_const_requires_exactly_the_value() -> None:
    assert failures("c: {const: {a: [1]}}", {"c": {"a": [1]}}) == []
    assert rules_of(failures("c: {const: {a: [1]}}", {"c": {"a": [2]}})) == ["const"]


def test_min_and_max_bound_numbers() -> None:
    rule = "n: {min: 1, max: 10}"
    assert failures(rule, {"n": 1}) == [] and failures(rule, {"n": 10.0}) == []
    assert [f.message for f in failures(rule, {"n": 0})] == ["$dst.n must be at least 1 (got 0)"]
    assert rules_of(failures(rule, {"n": 11})) == ["max"]


def test_min_refuses_non_numbers() -> None:
    assert rules_of(failures("n: {min: 1}", {"n": "5"})) == ["min"]


def test_min_length_and_max_length_bound_strings_and_arrays() -> None:
    rule = "s: {min_length: 2, max_length: 3}"
    assert failures(rule, {"s": "ab"}) == [] and failures(rule, {"s": [1, 2, 3]}) == []
    assert failures(rule, {"s": "a"})[0].message == "$dst.s must have at least 2 characters (got 1)"
    assert rules_of(failures(rule, {"s": [1, 2, 3, 4]})) == ["max_length"]


# ---- src, matches, $vars --------------------------------------------------------


def test_src_requires_equality_with_the_current_data() -> None:
    rule = "owner: {src: owner}"
    assert failures(rule, {"owner": "alice"}, src={"owner": "alice"}) == []
    found = failures(rule, {"owner": "bob"}, src={"owner": "alice"})
    assert found == [
        GuardFailure("$dst.owner", "src", "$dst.owner must equal src.owner ('alice') (got 'bob')")
    ]


def test_src_fails_when_the_current_field_is_not_set() -> None:
    assert "not set" in failures("owner: {src: owner}", {"owner": "x"})[0].message


def test_matches_compares_with_the_rendered_template() -> None:
    rule = "id: {matches: '${object.id}-${src.n}'}"
    assert failures(rule, {"id": "o-1-3"}, src={"n": 3}) == []
    assert rules_of(failures(rule, {"id": "o-1-4"}, src={"n": 3})) == ["matches"]


def test_block_chain_root_rule_accepts_a_doubled_half() -> None:
    half = "0123456789abcdef" * 4
    assert failures(ROOT_BLOCK_RULE, {"rootBlock": half + half}) == []


def test_block_chain_root_rule_refuses_different_halves() -> None:
    half = "0123456789abcdef" * 4
    found = failures(ROOT_BLOCK_RULE, {"rootBlock": half + "f" * 64})
    assert rules_of(found) == ["matches"] and "vars.firstHalf" in found[0].message


def test_block_chain_root_rule_refuses_non_hex_and_missing_blocks() -> None:
    assert rules_of(failures(ROOT_BLOCK_RULE, {"rootBlock": "G" * 128})) == ["regex"]
    assert rules_of(failures(ROOT_BLOCK_RULE, {})) == ["required"]


def test_vars_runtime_error_becomes_a_guard_failure() -> None:
    found = failures("n: {$vars: {v: int()}, matches: '${vars.v}'}", {"n": "abc"})
    assert rules_of(found) == ["$vars"] and "int cannot convert" in found[0].message


def test_matches_with_an_undefined_var_is_a_problem() -> None:
    assert "vars.half is not defined" in problems("x: {matches: '${vars.half}'}")[0].message


def test_bad_var_expression_is_a_problem() -> None:
    (problem,) = problems("x: {$vars: {v: 'nope(1)'}, matches: '${vars.v}'}")
    assert problem.path == "t.cond.x.$vars.v" and "unknown function 'nope'" in problem.message


def test_bad_matches_template_is_a_problem() -> None:
    assert "bad template" in problems("x: {matches: '${dst.a +}'}")[0].message


# ---- not, all_of, any_of, use, message -------------------------------------------


def test_not_fails_when_the_nested_rule_passes() -> None:
    rule = "owner: {not: {const: root}}"
    assert failures(rule, {"owner": "alice"}) == []
    assert rules_of(failures(rule, {"owner": "root"})) == ["not"]


def test_all_of_reports_every_failing_nested_rule() -> None:
    found = failures("s: {all_of: [{type: string}, {min_length: 5}]}", {"s": 7})
    assert rules_of(found) == ["type", "min_length"]


def test_all_of_carries_nested_required() -> None:
    assert rules_of(failures("s: {all_of: [{required: true}]}", {})) == ["required"]


def test_any_of_passes_when_one_nested_rule_passes() -> None:
    rule = "s: {any_of: [{type: integer}, {regex: '^[0-9]+$'}]}"
    assert failures(rule, {"s": 5}) == [] and failures(rule, {"s": "5"}) == []
    assert rules_of(failures(rule, {"s": "x"})) == ["any_of"]


def test_use_includes_a_named_rule_set() -> None:
    rules = "owner_id: {type: string, required: true, regex: '^[a-z]+$'}"
    assert rules_of(failures("owner: {use: owner_id}", {}, rules=rules)) == ["required"]
    assert rules_of(failures("owner: {use: owner_id}", {"owner": "B"}, rules=rules)) == ["regex"]


def test_unknown_use_is_a_problem_with_a_hint() -> None:
    (problem,) = problems("owner: {use: owner_di}", rules="owner_id: {type: string}")
    assert "unknown rule set 'owner_di'" in problem.message and "owner_id" in problem.message


def test_recursive_use_cycle_is_a_problem_not_a_hang() -> None:
    ctx = CompileContext(load("a: {use: b}\nb: {all_of: [{use: a}]}").value, [])
    assert any("uses itself (a -> b -> a)" in p.message for p in ctx.problems)


def test_named_rule_problems_are_reported_even_when_unused() -> None:
    ctx = CompileContext(load("unused: {type: strng}").value, [])
    assert [p.path for p in ctx.problems] == ["rules.unused.type"]


def test_message_replaces_the_default_messages() -> None:
    rule = "owner: {src: owner, type: string, message: only the lock owner can release}"
    found = failures(rule, {"owner": 5}, src={"owner": "alice"})
    assert {f.message for f in found} == {"only the lock owner can release"}
    assert rules_of(found) == ["src", "type"]


# ---- fields, alternatives, sides --------------------------------------------------


def test_every_field_must_pass() -> None:
    found = failures("a: {required: true}\nb: {required: true}", {"a": 1})
    assert [f.path for f in found] == ["$dst.b"]


def test_dotted_field_reads_nested_objects() -> None:
    rule = "address.city: {required: true, type: string}"
    assert failures(rule, {"address": {"city": "Oslo"}}) == []
    assert failures(rule, {"address": "Oslo"})[0].path == "$dst.address.city"


def test_first_passing_alternative_wins() -> None:
    rule = "- {a: {required: true}}\n- {b: {required: true}}"
    assert failures(rule, {"b": 1}) == []


def test_failing_alternatives_each_report_why() -> None:
    rule = "- {a: {required: true}}\n- {b: {type: integer}}"
    found = failures(rule, {"b": "x"})
    assert [f.message for f in found] == [
        "alternative 1: $dst.a is required",
        "alternative 2: $dst.b must be of type integer (got string 'x')",
    ]


def test_src_side_reads_the_current_data() -> None:
    found = failures("count: {min: 1}", {"count": 5}, src={"count": 0}, side="$src")
    assert found[0].path == "$src.count"


def test_data_side_reads_the_resulting_data_passed_as_dst() -> None:
    found = compiled("owner: {required: true}", side="data")(context({}, {"owner": "x"}))
    assert found == [GuardFailure("data.owner", "required", "data.owner is required")]


def test_requires_shorthand_checks_presence() -> None:
    condition = compile_requires(["a", "b.c"])
    assert [f.path for f in condition(context({"a": 1, "b": {}}))] == ["$dst.b.c"]


def test_empty_condition_compiles_to_none() -> None:
    ctx = CompileContext({}, [])
    assert compile_condition(load("{}"), ctx, "p", side="$dst") is None and not ctx.problems


# ---- problems -------------------------------------------------------------------------


def test_unknown_rule_key_is_a_problem_with_a_hint_at_the_key() -> None:
    (problem,) = problems("owner:\n  requird: true\n")
    assert (problem.path, problem.line, problem.column) == ("t.cond.owner.requird", 2, 3)
    assert "did you mean 'required'?" in problem.message


def test_unknown_type_name_is_a_problem_with_a_hint() -> None:
    assert "did you mean 'string'?" in problems("v: {type: strin}")[0].message


def test_every_problem_is_reported_not_just_the_first() -> None:
    found = problems("a: {min: x, max_length: -1}\nb: {enum: 3, required: yes please}")
    assert sorted(p.path.rsplit(".", 1)[-1] for p in found) == [
        "enum",
        "max_length",
        "min",
        "required",
    ]


def test_rule_that_is_not_a_mapping_is_a_problem() -> None:
    assert "must be a mapping of keyword" in problems("owner: string")[0].message


def test_condition_that_is_a_scalar_is_a_problem() -> None:
    assert "a condition must be a mapping" in problems("just text")[0].message


def test_alternative_that_is_not_a_mapping_is_a_problem() -> None:
    assert problems("- {a: {required: true}}\n- 3")[0].path == "t.cond[1]"


def test_unknown_side_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        compile_condition(load("{}"), CompileContext({}, []), "p", side="dst")


# ---- properties -----------------------------------------------------------------------

_RULE_ARGS = {
    "required": st.sampled_from(["true", "false", "3"]),
    "type": st.sampled_from(["string", "integer", "[string, 'null']", "nope", "3"]),
    "regex": st.sampled_from(["'^a+$'", "'('", "'(?=x)'", "1"]),
    "enum": st.sampled_from(["[1, a]", "[]", "x"]),
    "min": st.sampled_from(["1", "x"]),
    "max_length": st.sampled_from(["2", "-1"]),
    "matches": st.sampled_from(["'${dst.a}'", "'${vars.v}'", "'${bad}'", "'${'"]),
    "$vars": st.sampled_from(["{v: upper()}", "{v: 'substr(0'}", "x"]),
    "use": st.sampled_from(["r", "zz"]),
    "not": st.sampled_from(["{const: 1}", "x"]),
    "any_of": st.sampled_from(["[{type: string}]", "[]"]),
    "bogus": st.just("1"),
}


@st.composite
def rule_texts(draw: st.DrawFn) -> str:
    keys = draw(st.lists(st.sampled_from(sorted(_RULE_ARGS)), unique=True, max_size=4))
    return "{" + ", ".join(f"{k}: {draw(_RULE_ARGS[k])}" for k in keys) + "}"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(rule_texts(), min_size=1, max_size=3),
    st.booleans(),
    st.sampled_from(["A", 1, None, [1]]),
)
def test_generated_conditions_compile_to_problems_or_never_crash(
    rules: list[str], as_alternatives: bool, value: Any
) -> None:
    fields = [f"f{i}: {r}" for i, r in enumerate(rules)]
    text = "\n".join(f"- {{{f}}}" for f in fields) if as_alternatives else "\n".join(fields)
    try:
        node = load(text)
    except SchemaError:
        return
    ctx = CompileContext({"r": load("{type: string}")}, [])
    condition = compile_condition(node, ctx, "p", side="$dst")
    if ctx.problems:
        assert condition is None
        assert all(p.line >= 1 and p.message for p in ctx.problems)
    elif condition is not None:
        found = condition(context({f"f{i}": value for i in range(len(rules))}))
        assert all(isinstance(f, GuardFailure) and f.message for f in found)
