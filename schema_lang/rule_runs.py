"""How a compiled rule runs: one closure per rule, flattened, metered, remembered.

`conditions._compile_rule` compiles a rule's keywords (rule_keywords.py) and hands
them here: `rule_check` builds the closure that checks one field's value against
them (schema_lang/DESIGN.md, "How rules run"), `_value_rule` the one for a rule
whose keywords read the value alone (it remembers the short strings it passed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, cast

import orjson

from .expressions import MISSING, TemplateRuntimeError
from .limits import DATA_STEPS_PER_KIB
from .model import EvalContext, GuardFailure
from .rule_keywords import (
    MEMO,
    MEMO_TEXT,
    VALUE_ONLY,
    WORTH_REMEMBERING,
    Check,
    Vars,
    memo_number,
    remember_pass,
)
from .template_functions import plain_json

_CONTAINER = str | dict | list  # built once (a union in a check is built per call)


def rule_check(
    variables: tuple[tuple[str, Callable[..., Any]], ...],
    checks: tuple[Check, ...],
    message: str | None,
) -> Check:
    """One rule (a mapping of keywords) as one closure.

    Flattened when compiled: a keyword built by `rule_keywords._present` is called as
    its test (one call less), and a nested rule without `$vars` and `message` (what
    `use` returns) is inlined, its keywords in its place. Inlining keeps the steps
    metered: each rule charged `work` × the value's data steps when entered, so the
    flat rule charges the sum of the inlined rules' `work`. Failures come out in the
    same order as the nested closures gave them.
    """
    inlined, run_present, run_missing = _flatten(checks, inline=not variables)
    work = len(checks) + len(variables) + inlined
    steps_per_kib = work * DATA_STEPS_PER_KIB
    if (not variables and run_present and all(k in VALUE_ONLY for k, _ in run_present)
            and any(k in WORTH_REMEMBERING for k, _ in run_present)):
        value_tests = cast(tuple[tuple[str, Any], ...], run_present)  # no opaque (None) ones
        return _value_rule(work, value_tests, run_missing, message)

    def check(value: Any, ectx: EvalContext, outer: Vars, shown: str) -> list[GuardFailure]:
        if value is MISSING:  # only `required` and opaque checks act; no vars, no steps
            if not run_missing:
                return []
            failures = [f for c in run_missing for f in c(value, ectx, outer, shown)]
            return [_relabel(f, message) for f in failures] if message else failures
        if steps_per_kib and ectx.meter is not None:
            if value.__class__ is str:
                if len(value) >> 10:
                    ectx.meter(steps_per_kib * (len(value) >> 10))
            elif isinstance(value, _CONTAINER):
                ectx.meter(work * data_steps(value))
        scope = outer
        if variables:
            scope = dict(outer)
            for name, compute in variables:
                try:
                    scope[name] = compute(value, ectx, scope)
                except TemplateRuntimeError as exc:
                    failure = GuardFailure(shown, "$vars", f"{shown}: vars.{name}: {exc}")
                    return [_relabel(failure, message)]
        failures = []
        for keyword, test in run_present:
            if keyword is None:
                failures += test(value, ectx, scope, shown)
            else:
                problem = test(value, ectx, scope)
                if problem is not None:
                    failures.append(GuardFailure(shown, keyword, f"{shown} {problem}"))
        return [_relabel(f, message) for f in failures] if message and failures else failures

    # read when a rule `use`s this one (`_flatten`)
    check.rule_parts = RuleParts(  # type: ignore[attr-defined]
        bool(variables) or message is not None, work, run_present, run_missing)
    return check


def _value_rule(
    work: int,
    run_present: tuple[tuple[str, Any], ...],
    run_missing: tuple[Check, ...],
    message: str | None,
) -> Check:
    """`rule_check` of a rule whose keywords look at the value alone (VALUE_ONLY, no
    `$vars`), one of them worth remembering (a regex or an enum): it passes or fails a
    value the same way every time, so the short strings it passed are remembered (the
    same owners and ids come again and again) in the bounded table the regexes use. A
    short string reads no data steps (< 1 KiB), so a remembered pass meters what the
    checks would have: nothing."""
    memo = memo_number()
    steps_per_kib = work * DATA_STEPS_PER_KIB

    def check(value: Any, ectx: EvalContext, outer: Vars, shown: str) -> list[GuardFailure]:
        key = None
        if value.__class__ is str and len(value) <= MEMO_TEXT:
            key = (memo, value)
            if key in MEMO:
                return []
        elif value is MISSING:  # only `required` acts; no steps
            failures = [f for c in run_missing for f in c(value, ectx, outer, shown)]
            return [_relabel(f, message) for f in failures] if message else failures
        elif steps_per_kib and ectx.meter is not None:  # as _rule_check meters
            if value.__class__ is str:
                if len(value) >> 10:
                    ectx.meter(steps_per_kib * (len(value) >> 10))
            elif isinstance(value, _CONTAINER):
                ectx.meter(work * data_steps(value))
        failures = []
        for keyword, test in run_present:
            problem = test(value, ectx, outer)
            if problem is not None:
                failures.append(GuardFailure(shown, keyword, f"{shown} {problem}"))
        if failures:
            return [_relabel(f, message) for f in failures] if message else failures
        if key is not None:
            remember_pass(key)
        return failures

    check.rule_parts = RuleParts(  # type: ignore[attr-defined]
        message is not None, work, run_present, run_missing)
    check.memo = memo  # type: ignore[attr-defined]  # read by conditions._one_field
    return check


class RuleParts(NamedTuple):
    """What a compiled rule is made of, for the rules that inline it."""

    opaque: bool  # has `$vars` or `message`: called as a whole, never inlined
    work: int  # checks and vars it meters for, its own and those it inlined
    present: tuple[tuple[str | None, Any], ...]  # (keyword, test) or (None, opaque check)
    missing: tuple[Check, ...]  # what can fail (or act) for an absent field


def _flatten(
    checks: tuple[Check, ...], inline: bool
) -> tuple[int, tuple[tuple[str | None, Any], ...], tuple[Check, ...]]:
    """A rule's checks as (work the inlined rules add, present tests, absent checks).

    Not inlined below `$vars` (`inline` False): a failing var returns before the
    nested rule would have metered its steps."""
    inlined = 0
    present: list[tuple[str | None, Any]] = []
    missing: list[Check] = []
    for c in checks:
        parts: RuleParts | None = getattr(c, "rule_parts", None)
        if parts is not None and inline and not parts.opaque:
            inlined += parts.work
            present.extend(parts.present)
            missing.extend(parts.missing)
            continue
        leaf = getattr(c, "present_test", None)
        if leaf is not None:
            present.append(leaf)
        elif getattr(c, "only_missing", False):
            missing.append(c)
        else:
            present.append((None, c))
            missing.append(c)
    return inlined, tuple(present), tuple(missing)


def data_steps(value: Any) -> int:
    """Steps for reading a value, beyond the one its rule check is priced at:
    DATA_STEPS_PER_KIB per KiB (strings by length, containers as JSON)."""
    size = len(value) if isinstance(value, str) else len(orjson.dumps(value, default=plain_json))
    return DATA_STEPS_PER_KIB * (size >> 10)


def _relabel(failure: GuardFailure, message: str | None) -> GuardFailure:
    return GuardFailure(failure.path, failure.rule, message) if message else failure
