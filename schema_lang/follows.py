"""`follows`: a history condition over the transitions applied since the last restart.

`{all_of: [a, b]}`, `{any_of: [...]}`, `{none_of: [...]}`, `{event: a}`, a bare
name (same as `{event: name}`), nestable; several keys in one mapping must all
hold. Compiled into a closure over the frozenset of applied transition names.
"""

from __future__ import annotations

from collections.abc import Callable

from .model import Follows
from .nodes import Node
from .refs import Ref, Scope
from .shapes import join

Test = Callable[[frozenset[str]], bool]
FOLLOWS_KEYS = ("all_of", "any_of", "none_of", "event")
_MAX_DEPTH = 16


def compile_follows(node: Node, scope: Scope, path: str, owner: str) -> Follows | None:
    compiled = _term(node, scope, path, owner, 0)
    if compiled is None:
        return None
    test, description = compiled
    return Follows(test=test, description=description)


def _term(node: Node, scope: Scope, path: str, owner: str, depth: int) -> tuple[Test, str] | None:
    if depth > _MAX_DEPTH:
        scope.report.at(node, path, f"follows is nested deeper than {_MAX_DEPTH} levels")
        return None
    if isinstance(node.value, str):
        return _event(node, scope, path, owner)
    keys = scope.report.mapping(node, path, FOLLOWS_KEYS, "follows")
    if keys is None:
        return None
    if not keys:
        scope.report.at(node, path, f"follows needs one of {', '.join(FOLLOWS_KEYS)}")
        return None
    parts = [_keyword(k, v, scope, join(path, k), owner, depth) for k, v in keys.items()]
    if any(p is None for p in parts) or len(parts) != len(keys):
        return None
    tests = [p[0] for p in parts if p is not None]
    text = " and ".join(p[1] for p in parts if p is not None)
    if len(tests) == 1:
        return tests[0], text
    return (lambda applied: all(t(applied) for t in tests)), text


def _keyword(
    key: str, node: Node, scope: Scope, path: str, owner: str, depth: int
) -> tuple[Test, str] | None:
    if key not in FOLLOWS_KEYS:
        return None  # already reported as an unknown key
    if key == "event":
        return _event(node, scope, path, owner)
    items = scope.report.sequence(node, path, f"follows.{key}")
    if items is None:
        return None
    if not items:
        scope.report.at(node, path, f"follows.{key} needs at least one transition name")
        return None
    parts = [_term(item, scope, join(path, i), owner, depth + 1) for i, item in enumerate(items)]
    if any(p is None for p in parts):
        return None
    tests = tuple(p[0] for p in parts if p is not None)
    text = f"{key}({', '.join(p[1] for p in parts if p is not None)})"
    if key == "all_of":
        return (lambda applied: all(t(applied) for t in tests)), text
    if key == "any_of":
        return (lambda applied: any(t(applied) for t in tests)), text
    return (lambda applied: not any(t(applied) for t in tests)), text


def _event(node: Node, scope: Scope, path: str, owner: str) -> tuple[Test, str] | None:
    name = scope.report.name(node, path, "a transition name in follows")
    if name is None:
        return None
    scope.refs.append(Ref("transition", name, node, path, f"transition '{owner}' follows"))
    return (lambda applied: name in applied), name
