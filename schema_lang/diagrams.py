"""Mermaid `stateDiagram-v2` and Graphviz DOT renderings of a compiled machine (SPEC 3.4).

Both come from the same sorted edge list, so the output is deterministic: the
same revision always renders to the same text. Edges are labelled with the
transition name; a transition that needs votes carries `VOTE_MARK`.

`Marks` draws one object on the picture: its current state highlighted, the states
it passed through, and the edges it took numbered in order (from its history).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

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


@dataclass(frozen=True, slots=True)
class Marks:
    """One object on its machine's picture: where it is and the moves it made, oldest first."""

    current: str | None = None
    path: tuple[tuple[str | None, str | None, str], ...] = ()  # (from, to, transition)
    steps: Mapping[Edge, tuple[int, ...]] = field(default_factory=dict)  # edge -> move numbers

    @property
    def visited(self) -> set[str]:
        return {s for move in self.path for s in move[:2] if s is not None}


def marks_from_history(machine: MachineDef, current: str, events: Iterable[Mapping[str, Any]]) -> Marks:
    """`Marks` from an object's history events (oldest first): each move that matches a
    drawn edge (same source, target and transition name) is numbered on that edge."""
    by_move = {(e.source, e.target, e.label.split(" ")[0]): e for e in edges(machine)}
    path: list[tuple[str | None, str | None, str]] = []
    steps: dict[Edge, list[int]] = {}
    for event in events:
        move = (event.get("from"), event.get("to"), str(event.get("transition") or ""))
        edge = by_move.get(move)
        if edge is None or event.get("kind") not in ("created", "transition"):
            continue
        path.append(move)
        steps.setdefault(edge, []).append(len(path))
    return Marks(current, tuple(path), {e: tuple(n) for e, n in steps.items()})


def steps_text(numbers: tuple[int, ...]) -> str:
    """Move numbers for a label: `#2`, `#2,5,7`, or `#2,5,7… (9×)` past three."""
    shown = ",".join(str(n) for n in numbers[:3])
    return f"#{shown}" + (f"… ({len(numbers)}×)" if len(numbers) > 3 else "")


def _label(name: str, d: TransitionDef) -> str:
    return f"{name} {VOTE_MARK}" if d.votes is not None else name


def render_mermaid(machine: MachineDef, marks: Marks | None = None) -> str:
    ids = _mermaid_ids(sorted(machine.states))
    lines = ["stateDiagram-v2"]
    if machine.description:
        lines.append(f"    %% {machine.name}: {machine.description}".replace("\n", " "))
    lines += [f'    state "{name}" as {ids[name]}' for name in sorted(ids) if ids[name] != name]
    for edge in edges(machine):
        source = "[*]" if edge.source is None else ids[edge.source]
        target = "[*]" if edge.target is None else ids[edge.target]
        text = edge.label
        if marks is not None and edge in marks.steps:
            text = f"{text} {steps_text(marks.steps[edge])}"
        label = f": {_mermaid_text(text)}" if text else ""
        lines.append(f"    {source} --> {target}{label}")
    if marks is not None:
        lines += _mermaid_marks(marks, ids)
    return "\n".join(lines) + "\n"


def _mermaid_marks(marks: Marks, ids: Mapping[str, str]) -> list[str]:
    lines = [
        "    classDef current fill:#fde68a,stroke:#d97706,stroke-width:3px",
        "    classDef visited fill:#dbeafe,stroke:#2563eb",
    ]
    visited = sorted(s for s in marks.visited - {marks.current or ""} if s in ids)
    if visited:
        lines.append(f"    class {','.join(ids[s] for s in visited)} visited")
    if marks.current is not None and marks.current in ids:
        lines.append(f"    class {ids[marks.current]} current")
    moves = " ".join(f"-{t}-> {to}" for _, to, t in marks.path)
    if moves:
        lines.append(f"    %% path: [*] {moves}".replace("\n", " "))
    return lines


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


def render_dot(machine: MachineDef, marks: Marks | None = None) -> str:
    lines = [
        f"digraph {_quote(machine.name)} {{",
        "    rankdir=LR;",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica"];',
        '    "[start]" [shape=point, width=0.2, label=""];',
    ]
    if any(s.terminal for s in machine.states.values()):
        lines.append('    "[end]" [shape=doublecircle, width=0.15, label=""];')
    visited = marks.visited if marks is not None else set()
    for name in sorted(machine.states):
        extra = ", peripheries=2" if machine.states[name].terminal else ""
        if marks is not None and name == marks.current:
            extra += ', style="rounded,filled", fillcolor="#fde68a", color="#d97706", penwidth=3'
        elif name in visited:
            extra += ', style="rounded,filled", fillcolor="#dbeafe", color="#2563eb"'
        lines.append(f"    {_quote(name)} [label={_quote(name)}{extra}];")
    for edge in edges(machine):
        lines.append(_dot_edge(edge, marks))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot_edge(edge: Edge, marks: Marks | None) -> str:
    source = '"[start]"' if edge.source is None else _quote(edge.source)
    target = '"[end]"' if edge.target is None else _quote(edge.target)
    attrs: list[str] = []
    label = edge.label
    if marks is not None and edge in marks.steps:
        label = f"{label} {steps_text(marks.steps[edge])}"
        attrs += ['color="#2563eb"', 'fontcolor="#1d4ed8"', "penwidth=2.5"]
    if label:
        attrs.insert(0, f"label={_quote(label)}")
    if VOTE_MARK in edge.label:
        attrs.append("style=dashed")
    return f"    {source} -> {target}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";"
