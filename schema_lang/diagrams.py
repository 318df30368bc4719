"""Mermaid `stateDiagram-v2` and Graphviz DOT renderings of a compiled machine (SPEC 3.4).

Both come from the same sorted edge list, so the output is deterministic: the
same revision always renders to the same text. Edges are labelled with the
transition name; a transition that needs votes carries `VOTE_MARK`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .model import MachineDef, TransitionDef

VOTE_MARK = "🗳"
_MERMAID_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MERMAID_KEYWORDS = frozenset({"state", "note", "direction", "end", "as", "class", "classDef"})


class Edge(NamedTuple):
    source: str | None  # None = creation ([*])
    target: str | None  # None = the end marker after a terminal state
    label: str


def edges(machine: MachineDef) -> list[Edge]:
    """Every drawn edge: creations, moves ('*' expanded, no `to` = self-loop), terminal ends."""
    nonterminal = sorted(n for n, s in machine.states.items() if not s.terminal)
    found: set[Edge] = set()
    for name, defs in machine.transitions.items():
        for d in defs:
            label = _label(name, d)
            if d.creates:
                found.add(Edge(None, d.to, label))
                continue
            for source in nonterminal if d.any_source else sorted(d.sources):
                found.add(Edge(source, d.to or source, label))
    for name, state in machine.states.items():
        if state.terminal:
            found.add(Edge(name, None, ""))
    return sorted(found, key=lambda e: (e.source or "", e.target or "", e.label))


def _label(name: str, d: TransitionDef) -> str:
    return f"{name} {VOTE_MARK}" if d.votes is not None else name


def render_mermaid(machine: MachineDef) -> str:
    ids = _mermaid_ids(sorted(machine.states))
    lines = ["stateDiagram-v2"]
    if machine.description:
        lines.append(f"    %% {machine.name}: {machine.description}".replace("\n", " "))
    lines += [f'    state "{name}" as {ids[name]}' for name in sorted(ids) if ids[name] != name]
    for edge in edges(machine):
        source = "[*]" if edge.source is None else ids[edge.source]
        target = "[*]" if edge.target is None else ids[edge.target]
        label = f": {_mermaid_text(edge.label)}" if edge.label else ""
        lines.append(f"    {source} --> {target}{label}")
    return "\n".join(lines) + "\n"


def _mermaid_ids(names: list[str]) -> dict[str, str]:
    """A Mermaid-safe id per state; names with `-`, `.`, `:` … get a sanitized alias."""
    ids: dict[str, str] = {}
    used = {n for n in names if _plain_id(n)}
    for name in names:
        if _plain_id(name):
            ids[name] = name
            continue
        base = "s_" + re.sub(r"[^A-Za-z0-9_]", "_", name)
        alias, n = base, 1
        while alias in used:
            n += 1
            alias = f"{base}_{n}"
        used.add(alias)
        ids[name] = alias
    return ids


def _plain_id(name: str) -> bool:
    return bool(_MERMAID_ID.match(name)) and name not in _MERMAID_KEYWORDS


def _mermaid_text(text: str) -> str:
    return text.replace(":", "#58;").replace(";", "#59;") if ":" in text else text


def render_dot(machine: MachineDef) -> str:
    lines = [
        f"digraph {_quote(machine.name)} {{",
        "    rankdir=LR;",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica"];',
        '    "[start]" [shape=point, width=0.2, label=""];',
    ]
    if any(s.terminal for s in machine.states.values()):
        lines.append('    "[end]" [shape=doublecircle, width=0.15, label=""];')
    for name in sorted(machine.states):
        extra = ", peripheries=2" if machine.states[name].terminal else ""
        lines.append(f"    {_quote(name)} [label={_quote(name)}{extra}];")
    for edge in edges(machine):
        source = '"[start]"' if edge.source is None else _quote(edge.source)
        target = '"[end]"' if edge.target is None else _quote(edge.target)
        attrs = f" [label={_quote(edge.label)}" + (
            ", style=dashed" if VOTE_MARK in edge.label else ""
        )
        lines.append(f"    {source} -> {target}{attrs + ']' if edge.label else ''};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
