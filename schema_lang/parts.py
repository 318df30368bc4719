"""The structured parts of a transition: `set` templates, `votes` and `then` chains."""

from __future__ import annotations

import copy
from typing import Any, Literal

from .conditions import compile_condition
from .expressions import ExpressionError, compile_template
from .model import Condition, EvalContext, GuardFailure, Template, ThenStep, Votes
from .nodes import Node
from .refs import Ref, Scope
from .shapes import join, kind_of

VOTES_KEYS = ("voters", "quorum", "timeout")
THEN_KEYS = ("transition", "if")
IF_KEYS = ("$src", "$dst")
MAX_ANY_QUORUM = 10_000


def compile_template_at(node: Node, scope: Scope, path: str) -> Template | None:
    """A template from a string node; a bad template becomes a problem at its column."""
    try:
        return compile_template(node.value)
    except ExpressionError as exc:
        column = node.column + exc.column - (0 if scope.quoted_at(node) else 1)
        scope.report.at_pos(
            (node.line, column), path, f"bad template {node.value!r}: {exc.message}"
        )
        return None


def compile_set(node: Node, scope: Scope, path: str) -> tuple[tuple[str, Template], ...]:
    keys = scope.report.mapping(node, path, None, "set (a mapping of field: template)")
    fields: list[tuple[str, Template]] = []
    for field, value in (keys or {}).items():
        if isinstance(value.value, str):
            template = compile_template_at(value, scope, join(path, field))
            if template is not None:
                fields.append((field, template))
        else:
            fields.append((field, _constant(value.plain())))
    return tuple(fields)


def _constant(value: Any) -> Template:
    def render(ctx: EvalContext) -> Any:
        return copy.deepcopy(value)

    return render


def compile_votes(node: Node, scope: Scope, path: str) -> Votes | None:
    keys = scope.report.mapping(node, path, VOTES_KEYS, "votes")
    if keys is None:
        return None
    if "voters" not in keys:
        scope.report.at(node, join(path, "voters"), "votes needs voters: a list of names, or any")
        return None
    valid, voters = _voters(keys["voters"], scope, join(path, "voters"))
    quorum: int | Literal["majority", "all"] | None = "majority"
    if "quorum" in keys:
        quorum = _quorum(keys["quorum"], scope, join(path, "quorum"), voters if valid else ())
    timeout = None
    if "timeout" in keys:
        timeout = scope.report.duration_ms(keys["timeout"], join(path, "timeout"), "votes.timeout")
        if timeout is None:
            return None
    if not valid or quorum is None:
        return None
    return Votes(voters, quorum, timeout)


def _voters(node: Node, scope: Scope, path: str) -> tuple[bool, tuple[str, ...] | None]:
    """(valid, voters); voters is None for `voters: any`."""
    if node.value == "any":
        return True, None
    if not isinstance(node.value, list) or not node.value:
        scope.report.at(
            node, path, f"voters must be a non-empty list of names or any, not {kind_of(node)}"
        )
        return False, ()
    names: list[str] = []
    for i, item in enumerate(node.value):
        voter = scope.report.name(item, join(path, i), "a voter name")
        if voter is not None and voter in names:
            scope.report.at(item, join(path, i), f"voter '{voter}' is listed twice")
        elif voter is not None:
            names.append(voter)
    return len(names) == len(node.value), tuple(names)


def _quorum(
    node: Node, scope: Scope, path: str, voters: tuple[str, ...] | None
) -> int | Literal["majority", "all"] | None:
    value = node.value
    if value == "majority" or value == "all":
        return value  # type: ignore[no-any-return]
    if voters == ():
        return None  # the voters are invalid and already reported
    high = MAX_ANY_QUORUM if voters is None else len(voters)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= high:
        return value
    scope.report.at(
        node,
        path,
        f"quorum must be majority, all or an integer from 1 to {high}"
        f"{'' if voters is None else ' (the number of voters)'}, not {value!r}",
    )
    return None


def compile_then(node: Node, scope: Scope, path: str, owner: str) -> tuple[ThenStep, ...]:
    items = scope.report.sequence(node, path, "then (a list of {transition, if})")
    steps: list[ThenStep] = []
    for i, item in enumerate(items or []):
        step = _then_step(item, scope, join(path, i), owner)
        if step is not None:
            steps.append(step)
    return tuple(steps)


def _then_step(node: Node, scope: Scope, path: str, owner: str) -> ThenStep | None:
    keys = scope.report.mapping(node, path, THEN_KEYS, "a then step")
    if keys is None:
        return None
    if "transition" not in keys:
        scope.report.at(node, join(path, "transition"), "a then step needs transition: NAME")
        return None
    target = scope.report.name(keys["transition"], join(path, "transition"), "then.transition")
    condition = None
    if "if" in keys:
        condition = _if(keys["if"], scope, join(path, "if"))
    if target is None:
        return None
    scope.refs.append(
        Ref(
            "transition",
            target,
            keys["transition"],
            join(path, "transition"),
            f"transition '{owner}' chains (then) to",
        )
    )
    return ThenStep(target, condition)


def _if(node: Node, scope: Scope, path: str) -> Condition | None:
    keys = scope.report.mapping(node, path, IF_KEYS, "then.if")
    parts = [
        compile_condition(value, scope.conditions, join(path, side), side=side)
        for side, value in (keys or {}).items()
        if side in IF_KEYS and value.value is not None
    ]
    conditions = tuple(c for c in parts if c is not None)
    if not conditions:
        return None
    if len(conditions) == 1:
        return conditions[0]

    def both(ctx: EvalContext) -> list[GuardFailure]:
        return [failure for c in conditions for failure in c(ctx)]

    return both
