"""SPEC 3.2 conditions, compiled once into closures that return GuardFailures.

A condition is a mapping of field path → rule (AND) or a list of such mappings
(OR: the first passing alternative wins). A rule is a mapping of keywords; each
keyword has one small compiler in `rule_keywords.KEYWORDS` (the jsonschema way) that returns a
`Check` closure (the fastjsonschema way, minus generated source). Compilation
never stops at the first problem: each one is appended to `CompileContext.problems`.

Run-time semantics, decided here:
- a field is absent when any step of its dotted path is missing; then only
  `required` is checked, including `required` inside `use` and `all_of` (which
  are inlined rule sets). Every other keyword, `not` and `any_of` are skipped;
- `integer` is a JSON integer (Python int, never bool; 3.0 is a number, not an
  integer); `number` is int or float, never bool; equality (`enum`, `const`,
  `src`, `matches`) is JSON equality: true is not 1;
- `regex` uses RE2 search semantics and fails for a non-string value;
- a `$vars` or `matches` function that cannot handle the data (`int('x')`) fails
  the rule with a GuardFailure instead of raising;
- `message` replaces the message of every failure the rule produces.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import Problem
from .expressions import (
    MISSING,
    ExpressionError,
    compile_var_expression,
    expression_references,
    lookup,
)
from .model import Condition, EvalContext, GuardFailure
from .nodes import Node
from .rule_keywords import (
    KEYWORDS,
    MEMO,
    MEMO_TEXT,
    Check,
    Site,
    Vars,
    at_column,
    json_equal,
    json_type,
    kind,
    unknown_vars,
)
from .rule_runs import rule_check

SIDES = ("$dst", "$src", "data")
_NO_VARS: Mapping[str, Any] = MappingProxyType({})


@dataclass
class CompileContext:
    """What compiling a machine's conditions shares: named rules and the problem list.

    Creating it compiles every rule of `rules:` once (so an unused rule's problems
    are still reported, at `rules.NAME…`); `use:` then reuses the compiled check.
    """

    rules: dict[str, Node]
    problems: list[Problem] = field(default_factory=list)
    regex_max: int = 1000
    _named: dict[str, Check] = field(default_factory=dict, init=False, repr=False)
    _compiling: list[str] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in self.rules:
            self.named_rule(name)

    def problem(self, pos: tuple[int, int], path: str, message: str) -> None:
        self.problems.append(Problem(path, pos[0], pos[1], message))

    def cycle_through(self, name: str) -> str | None:
        """`a -> b -> a` when `name` is being compiled further up (a `use` cycle)."""
        if name not in self._compiling:
            return None
        return " -> ".join([*self._compiling[self._compiling.index(name) :], name])

    def named_rule(self, name: str) -> Check | None:
        """The compiled rule set `name`; None when unknown or part of a `use` cycle."""
        if name in self._named:
            return self._named[name]
        if name in self._compiling:
            return None
        self._compiling.append(name)
        try:
            check = _compile_rule(self.rules[name], self, f"rules.{name}", frozenset())
        finally:
            self._compiling.pop()
        self._named[name] = check
        return check


def compile_condition(node: Node, ctx: CompileContext, path: str, *, side: str) -> Condition | None:
    """Compiles a condition at `path`; None when it is empty or has problems (recorded in ctx)."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {', '.join(SIDES)}, not {side!r}")
    if node.value is None or node.value == {}:
        return None
    before = len(ctx.problems)
    if isinstance(node.value, list):
        condition = _compile_alternatives(node, ctx, path, side)
    elif isinstance(node.value, dict):
        condition = _compile_fields(node, ctx, path, side)
    else:
        ctx.problem(
            (node.line, node.column),
            path,
            f"a condition must be a mapping of field: rule (or a list of them for OR),"
            f" not {kind(node.value)}",
        )
        return None
    return condition if len(ctx.problems) == before else None


def compile_requires(fields: list[str], side: str = "$dst") -> Condition:
    """The `requires: [a, b.c]` shorthand: each field must be present."""
    paths = [(f, tuple(f.split("."))) for f in fields]

    def condition(ectx: EvalContext) -> list[GuardFailure]:
        data = _data(ectx, side)
        return [
            GuardFailure(f"{side}.{name}", "required", f"{side}.{name} is required")
            for name, steps in paths
            if lookup(data, steps) is MISSING
        ]

    return condition


def _data(ectx: EvalContext, side: str) -> Mapping[str, Any]:
    # A state's data invariant is checked against the resulting data, which the
    # engine passes as `dst`.
    return ectx.src if side == "$src" else ectx.dst


def _compile_alternatives(node: Node, ctx: CompileContext, path: str, side: str) -> Condition:
    if not node.value:
        ctx.problem((node.line, node.column), path, "an OR list of conditions must not be empty")
    alternatives: list[Condition] = []
    for i, item in enumerate(node.value):
        where = f"{path}[{i}]"
        if not isinstance(item.value, dict):
            ctx.problem(
                (item.line, item.column),
                where,
                f"each alternative must be a mapping of field: rule, not {kind(item.value)}",
            )
            continue
        alternatives.append(_compile_fields(item, ctx, where, side))

    def any_alternative(ectx: EvalContext) -> list[GuardFailure]:
        failed: list[GuardFailure] = []
        for n, alternative in enumerate(alternatives, 1):
            failures = alternative(ectx)
            if not failures:
                return []
            failed += [
                GuardFailure(f.path, f.rule, f"alternative {n}: {f.message}") for f in failures
            ]
        return failed

    return any_alternative


def _compile_fields(node: Node, ctx: CompileContext, path: str, side: str) -> Condition:
    checks: list[tuple[str, tuple[str, ...], Check]] = []
    for name, rule in node.value.items():
        where = f"{path}.{name}"
        steps = tuple(name.split("."))
        if not all(steps):
            ctx.problem(node.key_position(name), where, f"field path '{name}' has an empty segment")
            continue
        checks.append((f"{side}.{name}", steps, _compile_rule(rule, ctx, where, frozenset())))

    # a one-step path is a dict lookup (what `lookup` does for a dict, without the loop)
    fields = tuple((shown, steps[0] if len(steps) == 1 else None, steps, check)
                   for shown, steps, check in checks)
    from_src = side == "$src"
    if len(fields) == 1:
        shown, name, steps, check = fields[0]
        if name is not None:
            return _one_field(shown, name, steps, check, from_src)

    def every_field(ectx: EvalContext) -> list[GuardFailure]:
        data = ectx.src if from_src else ectx.dst
        failures: list[GuardFailure] | None = None  # built only when something fails
        for shown, name, steps, check in fields:
            if name is not None and data.__class__ is dict:
                value = data.get(name, MISSING)
            else:
                value = lookup(data, steps)
            found = check(value, ectx, _NO_VARS, shown)
            if found:
                if failures is None:
                    failures = []
                failures += found
        return [] if failures is None else failures

    return every_field


def _one_field(
    shown: str, name: str, steps: tuple[str, ...], check: Check, from_src: bool
) -> Condition:
    """`every_field` of a condition on one top-level field (most are): no loop."""
    memo = getattr(check, "memo", None)
    if memo is not None:  # a value-only rule (rule_runs._value_rule): its passes remembered

        def one_remembered(ectx: EvalContext) -> list[GuardFailure]:
            data = ectx.src if from_src else ectx.dst
            value = data.get(name, MISSING) if data.__class__ is dict else lookup(data, steps)
            if value.__class__ is str and len(value) <= MEMO_TEXT and (memo, value) in MEMO:
                return []  # the check's own first test, without the call
            return check(value, ectx, _NO_VARS, shown)

        return one_remembered

    def one_field(ectx: EvalContext) -> list[GuardFailure]:
        data = ectx.src if from_src else ectx.dst
        value = data.get(name, MISSING) if data.__class__ is dict else lookup(data, steps)
        return check(value, ectx, _NO_VARS, shown)

    return one_field


def _compile_rule(node: Node, ctx: CompileContext, path: str, known_vars: frozenset[str]) -> Check:
    if not isinstance(node.value, dict):
        ctx.problem(
            (node.line, node.column),
            path,
            f"a rule must be a mapping of keyword: value such as {{type: string, required: true}},"
            f" not {kind(node.value)}",
        )
        return _passes
    keys: dict[str, Node] = node.value
    variables = _compile_vars(keys.get("$vars"), ctx, f"{path}.$vars")
    known = known_vars | {name for name, _ in variables}
    checks: list[Check] = []
    for key, arg in keys.items():
        if key in ("$vars", "message"):
            continue
        compiler = KEYWORDS.get(key)
        if compiler is None:
            close = difflib.get_close_matches(key, [*KEYWORDS, "$vars", "message"], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            ctx.problem(node.key_position(key), f"{path}.{key}", f"unknown rule '{key}'{hint}")
            continue
        check = compiler(arg, Site(ctx, f"{path}.{key}", known, _compile_rule))
        if check is not None:
            checks.append(check)
    message = _message(keys.get("message"), ctx, f"{path}.message")
    return rule_check(tuple(variables), tuple(checks), message)


def _passes(value: Any, ectx: EvalContext, vars: Vars, shown: str) -> list[GuardFailure]:
    return []


def _message(node: Node | None, ctx: CompileContext, path: str) -> str | None:
    if node is None:
        return None
    if isinstance(node.value, str) and node.value.strip():
        return node.value
    ctx.problem((node.line, node.column), path, "message must be a non-empty string")
    return None


def _compile_vars(
    node: Node | None, ctx: CompileContext, path: str
) -> list[tuple[str, Callable[..., Any]]]:
    if node is None:
        return []
    if not isinstance(node.value, dict):
        ctx.problem((node.line, node.column), path, "$vars must be a mapping of name: expression")
        return []
    variables: list[tuple[str, Callable[..., Any]]] = []
    for name, expr in node.value.items():
        where = f"{path}.{name}"
        if not name.isidentifier():
            ctx.problem(node.key_position(name), where, f"vars name '{name}' must be an identifier")
            continue
        try:
            compute = compile_var_expression(expr.value)
            unknown = unknown_vars(expression_references(expr.value), {n for n, _ in variables})
        except ExpressionError as exc:
            ctx.problem(at_column(expr, exc.column), where, f"bad expression: {exc.message}")
            variables.append((name, _nothing))  # known, so `matches` does not cascade
            continue
        if unknown:
            ctx.problem(
                (expr.line, expr.column), where, f"vars.{unknown} is not defined before '{name}'"
            )
        variables.append((name, compute))
    return variables


def _nothing(subject: Any, ectx: EvalContext, vars: Vars) -> Any:
    return MISSING


__all__ = ["CompileContext", "compile_condition", "compile_requires", "json_equal", "json_type"]
