"""`transitions:` — each name maps to one candidate definition or a list of them (SPEC 3.1)."""

from __future__ import annotations

from typing import Any

from .conditions import compile_condition
from .follows import compile_follows
from .model import DataMode, TransitionDef
from .nodes import Node
from .parts import compile_set, compile_then, compile_votes
from .refs import CandidateSite, Ref, Scope
from .shapes import join, kind_of

TRANSITION_KEYS = (
    "from", "to", "$dst", "$src", "requires", "follows", "restart",
    "data", "set", "votes", "then", "emit", "description",
)  # fmt: skip
DATA_MODES: tuple[DataMode, ...] = ("merge", "replace", "keep")
FROM_HELP = "a state, a list of states, null (creation) or '*' (any non-terminal state)"


def compile_transitions(node: Node, scope: Scope, path: str = "transitions") -> None:
    """Fills `scope.candidates`; problems go to `scope.report`."""
    names = scope.report.mapping(node, path, None, "transitions")
    if names is None:
        return
    for name, value in names.items():
        name_path = join(path, name)
        if scope.report.name(Node(name, *node.key_position(name)), name_path, "a transition name"):
            scope.candidates[name] = _candidates(name, value, scope, name_path)


def _candidates(name: str, node: Node, scope: Scope, path: str) -> list[CandidateSite]:
    if isinstance(node.value, dict):
        site = _candidate(name, node, scope, path, None)
        return [site] if site else []
    if not isinstance(node.value, list) or not node.value:
        scope.report.at(
            node,
            path,
            f"transition '{name}' must be a mapping or a non-empty list of mappings"
            f" (tried in order), not {kind_of(node)}",
        )
        return []
    sites = [_candidate(name, item, scope, join(path, i), i) for i, item in enumerate(node.value)]
    return [s for s in sites if s is not None]


def _candidate(
    name: str, node: Node, scope: Scope, path: str, index: int | None
) -> CandidateSite | None:
    what = f"transition '{name}'" + (f" (candidate {index})" if index is not None else "")
    keys = scope.report.mapping(node, path, TRANSITION_KEYS, what)
    if keys is None:
        return None
    if "from" not in keys:
        scope.report.at(node, join(path, "from"), f"{what} needs 'from': {FROM_HELP}")
        return None
    sources = _from(name, keys["from"], scope, join(path, "from"))
    creates, any_source = keys["from"].value is None, keys["from"].value == "*"
    to = _to(name, keys, node, scope, path, creates)
    fields: dict[str, Any] = {}
    for key, value in keys.items():
        _option(key, value, name, scope, join(path, key), fields)
    if creates and "votes" in fields:
        scope.report.at(
            keys["votes"],
            join(path, "votes"),
            f"{what} creates the object and cannot wait for votes (there is no object to hold"
            " the pending change yet); put the votes on a transition out of the first state",
        )
    if sources is None:
        return None
    defn = TransitionDef(name, creates, any_source, frozenset(sources), to, **fields)
    conditional = any(k in keys for k in ("$dst", "$src", "requires", "follows"))
    return CandidateSite(defn, node, path, keys["from"], index, conditional)


def _from(name: str, node: Node, scope: Scope, path: str) -> list[str] | None:
    value = node.value
    if value is None or value == "*":
        return []
    items = [node] if isinstance(value, str) else value if isinstance(value, list) else None
    if not items:
        scope.report.at(node, path, f"transition '{name}' has from: {value!r}; use {FROM_HELP}")
        return None
    sources: list[str] = []
    for i, item in enumerate(items):
        item_path = path if item is node else join(path, i)
        state = scope.report.name(item, item_path, "a state in from")
        if state is None:
            continue
        if state in sources:
            scope.report.at(item, item_path, f"state '{state}' is listed twice in from")
            continue
        sources.append(state)
        scope.refs.append(Ref("state", state, item, item_path, f"transition '{name}' leaves"))
    return sources


def _to(
    name: str, keys: dict[str, Node], node: Node, scope: Scope, path: str, creates: bool
) -> str | None:
    if "to" not in keys:
        if creates:
            scope.report.at(
                node,
                join(path, "to"),
                f"transition '{name}' creates the object (from: null) and needs 'to':"
                " the state the new object starts in",
            )
        return None
    to = scope.report.name(keys["to"], join(path, "to"), "to (omit it to stay in the same state)")
    if to is not None:
        scope.refs.append(
            Ref("state", to, keys["to"], join(path, "to"), f"transition '{name}' goes to")
        )
    return to


def _option(key: str, node: Node, name: str, scope: Scope, path: str, out: dict[str, Any]) -> None:
    """Compiles one optional key of a candidate into the TransitionDef field it sets."""
    report = scope.report
    if key in ("$dst", "$src") and node.value is not None:
        field = "dst" if key == "$dst" else "src"
        out[field] = compile_condition(node, scope.conditions, path, side=key)
    elif key == "requires":
        out["requires"] = _requires(node, scope, path)
    elif key == "follows":
        out["follows"] = compile_follows(node, scope, path, name)
    elif key == "restart":
        out["restart"] = report.boolean(node, path, "restart")
    elif key == "data":
        if node.value in DATA_MODES:
            out["data_mode"] = node.value
        else:
            report.at(
                node, path, f"data must be one of {', '.join(DATA_MODES)}, not {node.value!r}"
            )
    elif key == "set":
        out["set_fields"] = compile_set(node, scope, path)
    elif key == "votes":
        votes = compile_votes(node, scope, path)
        if votes is not None:
            out["votes"] = votes
    elif key == "then":
        out["then"] = compile_then(node, scope, path, name)
    elif key == "emit":
        out["emit"] = report.name(node, path, "emit (an event name)")
    elif key == "description":
        report.string(node, path, "description")


def _requires(node: Node, scope: Scope, path: str) -> tuple[str, ...]:
    items = scope.report.sequence(node, path, "requires (a list of payload field names)")
    fields: list[str] = []
    for i, item in enumerate(items or []):
        field = scope.report.string(item, join(path, i), "a field name in requires")
        if field is not None and field in fields:
            scope.report.at(item, join(path, i), f"field '{field}' is listed twice in requires")
        elif field is not None:
            fields.append(field)
    return tuple(fields)
