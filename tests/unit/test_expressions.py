"""schema_lang.expressions: templates, functions, references and every compile error."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schema_lang.expressions import (
    ExpressionError,
    TemplateRuntimeError,
    compile_template,
    compile_var_expression,
    expression_references,
    template_references,
)
from schema_lang.model import EvalContext, ObjectView

NOW = "2026-11-22T07:00:00.000Z"


def context(dst: dict[str, Any] | None = None, src: dict[str, Any] | None = None) -> EvalContext:
    return EvalContext(
        dst=dst if dst is not None else {},
        src=src if src is not None else {},
        obj=ObjectView("lock-1", 7, "held"),
        now=NOW,
    )


def render(text: str, dst: dict[str, Any] | None = None, src: dict[str, Any] | None = None) -> Any:
    return compile_template(text)(context(dst, src))


def compile_error(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        compile_template(text)
    return caught.value


# ---- references -------------------------------------------------------------


def test_text_without_expressions_renders_as_is() -> None:
    assert render("plain text } $ {") == "plain text } $ {"


def test_single_expression_keeps_the_value_type() -> None:
    assert render("${dst.count}", dst={"count": 3}) == 3


def test_single_expression_copies_containers_instead_of_aliasing_them() -> None:
    payload = {"items": [1, 2]}
    result = render("${dst.items}", dst=payload)
    assert result == [1, 2]
    result.append(3)
    assert payload["items"] == [1, 2]


def test_mixed_template_renders_to_text() -> None:
    assert render("n=${dst.count}, ok=${dst.ok}", dst={"count": 3, "ok": True}) == "n=3, ok=true"


def test_dotted_reference_reads_nested_objects_and_list_indexes() -> None:
    assert render("${dst.a.b.1}", dst={"a": {"b": ["x", "y"]}}) == "y"


def test_src_reference_reads_the_current_data() -> None:
    assert render("${src.owner}", src={"owner": "alice"}) == "alice"


def test_object_references_read_id_version_and_state() -> None:
    assert render("${object.id}/${object.version}/${object.state}") == "lock-1/7/held"


def test_now_is_the_entry_timestamp() -> None:
    assert render("${now}") == NOW


def test_missing_reference_renders_as_empty_text() -> None:
    assert render("[${dst.nope}]") == "[]"


def test_missing_single_reference_is_null() -> None:
    assert render("${dst.nope.deeper}") is None


def test_vars_are_read_from_the_vars_mapping() -> None:
    template = compile_template("${vars.half}${vars.half}")
    assert template(context(), {"half": "ab"}) == "abab"


def test_double_dollar_escapes_a_literal_placeholder() -> None:
    assert render("cost: $${dst.x}") == "cost: ${dst.x}"


def test_string_literal_may_contain_braces_and_escaped_quotes() -> None:
    assert render('${concat(\'}\', "a\\"b")}') == '}a"b'


def test_template_references_lists_every_reference() -> None:
    refs = template_references("${sha256(src.chain, dst.block)}-${vars.v}")
    assert refs == {"src.chain", "dst.block", "vars.v"}


# ---- functions --------------------------------------------------------------


def test_substr_slices_by_start_and_end() -> None:
    assert render("${substr(dst.s, 1, 3)}", dst={"s": "abcdef"}) == "bc"


def test_substr_without_end_runs_to_the_end() -> None:
    assert render("${substr(dst.s, 4)}", dst={"s": "abcdef"}) == "ef"


def test_lower_and_upper() -> None:
    assert render("${lower(dst.s)}${upper(dst.s)}", dst={"s": "aB"}) == "abAB"


def test_len_counts_characters_and_items() -> None:
    assert render("${len(dst.s)}", dst={"s": "h\u00e9"}) == 2
    assert render("${len(dst.l)}", dst={"l": [1, 2, 3]}) == 3


def test_len_of_missing_is_zero() -> None:
    assert render("${len(dst.nope)}") == 0


def test_concat_joins_rendered_values() -> None:
    assert render("${concat(dst.a, '-', 5, dst.nope)}", dst={"a": "x"}) == "x-5"


def test_sha256_hashes_the_utf8_concatenation() -> None:
    expected = hashlib.sha256("abc\u00e9".encode()).hexdigest()
    assert (
        render("${sha256(src.chain, dst.block)}", {"block": "\u00e9"}, {"chain": "abc"}) == expected
    )


def test_sha256_counts_a_missing_value_as_empty() -> None:
    expected = hashlib.sha256(b"block").hexdigest()
    assert render("${sha256(src.chain, dst.block)}", dst={"block": "block"}) == expected


def test_hex_of_integer_and_of_text() -> None:
    assert render("${hex(255)}") == "ff"
    assert render("${hex('ab')}") == "6162"


def test_int_parses_decimal_text() -> None:
    assert render("${int(dst.n)}", dst={"n": " 42 "}) == 42


def test_str_renders_json_spelling() -> None:
    assert render("${str(dst.v)}", dst={"v": {"b": 1, "a": None}}) == '{"a":null,"b":1}'


def test_int_of_non_numeric_text_is_a_runtime_error() -> None:
    with pytest.raises(TemplateRuntimeError, match="int cannot convert 'x'"):
        render("${int('x')}")


def test_substr_with_text_index_is_a_runtime_error() -> None:
    with pytest.raises(TemplateRuntimeError, match="substr start must be an integer"):
        render("${substr('abc', 'a')}")


def test_len_of_a_number_is_a_runtime_error() -> None:
    with pytest.raises(TemplateRuntimeError):
        render("${len(5)}")


# ---- var expressions ----------------------------------------------------------


def test_var_expression_takes_the_field_value_as_implicit_subject() -> None:
    first_half = compile_var_expression("substr(0,64)")
    assert first_half("a" * 64 + "b" * 64, context(), {}) == "a" * 64


def test_var_expression_without_arguments_applies_to_the_subject() -> None:
    assert compile_var_expression("upper()")("abc", context(), {}) == "ABC"


def test_var_expression_may_be_a_template_without_subject() -> None:
    assert compile_var_expression("${dst.a}!")("ignored", context({"a": "x"}), {}) == "x!"


def test_var_expression_arity_counts_the_implicit_subject() -> None:
    with pytest.raises(ExpressionError, match="counting the field's own value"):
        compile_var_expression("substr(0, 1, 2)")


def test_var_expression_must_be_a_call() -> None:
    with pytest.raises(ExpressionError, match="must be a function call"):
        compile_var_expression("dst.a")


def test_expression_references_of_a_var_expression() -> None:
    assert expression_references("substr(0, len(vars.x))") == {"vars.x"}


# ---- compile errors -----------------------------------------------------------


def test_unknown_function_is_refused_with_its_column() -> None:
    error = compile_error("ab${nope(1)}")
    assert "unknown function 'nope'" in error.message and error.column == 5


def test_wrong_arity_is_refused() -> None:
    assert "lower takes 1 arguments, got 2" in compile_error("${lower('a', 'b')}").message


def test_unknown_root_is_refused() -> None:
    error = compile_error("${data.x}")
    assert "must start with one of src, dst, vars, object, now" in error.message
    assert error.column == 3


def test_unknown_object_field_is_refused() -> None:
    assert "object.id, object.version, object.state" in compile_error("${object.owner}").message


def test_now_with_a_field_is_refused() -> None:
    assert "now has no fields" in compile_error("${now.day}").message


def test_syntax_error_points_at_the_bad_character() -> None:
    error = compile_error("${dst.a + 1}")
    assert error.column == 9 and "'+'" in error.message


def test_unclosed_placeholder_is_refused() -> None:
    assert "not closed" in compile_error("x ${dst.a").message


def test_empty_placeholder_is_refused() -> None:
    assert "empty expression" in compile_error("${ }").message


def test_nesting_deeper_than_32_is_refused() -> None:
    deep = "${" + "lower(" * 33 + "dst.a" + ")" * 33 + "}"
    assert "deeper than 32" in compile_error(deep).message


def test_nesting_of_32_is_accepted() -> None:
    ok = "${" + "lower(" * 32 + "dst.a" + ")" * 32 + "}"
    assert compile_template(ok)(context({"a": "X"})) == "x"


def test_template_longer_than_4096_characters_is_refused() -> None:
    assert "longer than 4096" in compile_error("x" * 4097).message


def test_non_string_template_is_refused() -> None:
    with pytest.raises(ExpressionError):
        compile_template(42)  # type: ignore[arg-type]


# ---- properties -----------------------------------------------------------------

_ATOMS = st.sampled_from(
    ["dst.a", "src.b", "vars.c", "now", "object.id", "1", "'x'", '"y"', "-3", "bad.x", "", "("]
)


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 3 or draw(st.booleans()):
        return draw(_ATOMS)
    name = draw(
        st.sampled_from(["substr", "lower", "len", "concat", "sha256", "hex", "int", "nope"])
    )
    args = draw(st.lists(expressions(depth + 1), max_size=4))
    return f"{name}({', '.join(args)})"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.text(max_size=8), expressions().map(lambda e: "${" + e + "}")), max_size=4
    )
)
def test_generated_templates_compile_or_raise_expression_error(parts: list[str]) -> None:
    try:
        template = compile_template("".join(parts))
    except ExpressionError as exc:
        assert exc.column >= 1
        return
    with contextlib.suppress(TemplateRuntimeError):  # a defined, deterministic outcome
        template(context({"a": "A"}, {"b": 2}), {"c": [1]})


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_compiles_or_raises_expression_error(text: str) -> None:
    try:
        compile_template(text)
    except ExpressionError as exc:
        assert exc.column >= 1
