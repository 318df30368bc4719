"""A machine drawn as a standalone SVG picture, laid out here (no Graphviz, no browser).

The same sorted edge list as the Mermaid and DOT renderings (diagrams.py), so the
same revision always gives the same picture. Layout, left to right: each state's
column is its distance from creation (breadth-first over the edges; states no
creation reaches form the second column); within a column states are ordered by
the mean row of the states that lead to them. Forward edges are curves between
columns; edges going back (or within a column) loop under the states; a transition
that stays in its state is a loop above it. Edges between the same two states are
drawn once with their labels joined. Terminal states have a double border.

Optional `Marks` (one object: current state, visited states, numbered moves) and
`counts` (objects per state, shown in a pill on each state) annotate the picture.
Every state is a `<g class="state" data-state="...">`, every edge a
`<g class="edge" data-from data-to>`, so a page or a test can find them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from .diagrams import VOTE_MARK, Edge, Marks, edges, steps_text
from .model import MachineDef

START = "\x00start"  # the creation point; not a valid state name
CHAR_W, PAD_X, NODE_H, GAP_X, GAP_Y, MARGIN = 7.4, 14.0, 36.0, 130.0, 56.0, 24.0
LOOP_H, BACK_H = 30.0, 40.0

STYLE = """
.state rect{fill:#f8fafc;stroke:#64748b;stroke-width:1.5}
.state text{font:13px system-ui,Helvetica,Arial,sans-serif;fill:#0f172a}
.state.visited rect.box{fill:#dbeafe;stroke:#2563eb}
.state.current rect.box{fill:#fde68a;stroke:#d97706;stroke-width:3}
.state .pill{fill:#334155;stroke:none}.state .pill-text{fill:#fff;font-size:11px;font-weight:600}
.edge path{fill:none;stroke:#94a3b8;stroke-width:1.4}
.edge.voted path{stroke-dasharray:5 3}
.edge text{font:11px system-ui,Helvetica,Arial,sans-serif;fill:#475569;paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round}
.edge.taken path{stroke:#2563eb;stroke-width:2.6}
.edge.taken text{fill:#1d4ed8;font-weight:600}
.start{fill:#0f172a}
"""


@dataclass
class Box:
    name: str
    layer: int
    row: int
    width: float
    x: float = 0.0
    y: float = 0.0

    @property
    def cx(self) -> float:
        return self.x + self.width / 2

    @property
    def cy(self) -> float:
        return self.y + NODE_H / 2


def render_svg(
    machine: MachineDef, marks: Marks | None = None, counts: Mapping[str, int] | None = None
) -> str:
    drawn = [e for e in edges(machine) if e.target is not None]
    groups: dict[tuple[str, str], list[Edge]] = {}
    for edge in drawn:
        groups.setdefault((edge.source or START, edge.target or ""), []).append(edge)
    boxes = _layout(machine, list(groups), counts)
    width = max([b.x + b.width for b in boxes.values()] + [
        _bow_extent(boxes[s], boxes[t], group) for (s, t), group in groups.items()
    ]) + MARGIN
    height = max(b.y + NODE_H for b in boxes.values()) + MARGIN + _below(boxes, list(groups))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="fsm-diagram" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'role="img" aria-label={quoteattr("state diagram of " + machine.name)}>',
        f"<style>{STYLE}</style>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#94a3b8"/>'
        '</marker><marker id="arrow-taken" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#2563eb"/>'
        "</marker></defs>",
    ]
    for (source, target), group in groups.items():
        parts.append(_edge(boxes[source], boxes[target], group, marks))
    for box in boxes.values():
        parts.append(_state(machine, box, marks, counts))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _layout(
    machine: MachineDef, pairs: list[tuple[str, str]], counts: Mapping[str, int] | None
) -> dict[str, Box]:
    names = sorted(machine.states)
    layer = _layers(names, pairs)
    columns: dict[int, list[str]] = {}
    for name in ([START] if START in layer else []) + names:
        columns.setdefault(layer[name], []).append(name)
    incoming: dict[str, list[str]] = {}
    for source, target in pairs:
        if source != target:
            incoming.setdefault(target, []).append(source)
    row: dict[str, float] = {}
    for k in sorted(columns):
        preds = {n: [row[s] for s in incoming.get(n, ()) if s in row] for n in columns[k]}
        columns[k].sort(key=lambda n: (sum(preds[n]) / len(preds[n]) if preds[n] else 1e9, n))
        row.update({n: float(i) for i, n in enumerate(columns[k])})
    boxes = {n: Box(n, layer[n], int(row[n]), _width(n, counts)) for n in layer}
    tallest = max(len(c) for c in columns.values())
    top = MARGIN + (LOOP_H + 14 if any(s == t for s, t in pairs) else 0)
    x = MARGIN
    for k in sorted(columns):
        col = [boxes[n] for n in columns[k]]
        offset = (tallest - len(col)) * (NODE_H + GAP_Y) / 2
        for box in col:
            box.x = x + (max(b.width for b in col) - box.width) / 2
            box.y = top + offset + box.row * (NODE_H + GAP_Y)
        x += max(b.width for b in col) + GAP_X
    return boxes


def _layers(names: list[str], pairs: list[tuple[str, str]]) -> dict[str, int]:
    outgoing: dict[str, list[str]] = {}
    for source, target in pairs:
        outgoing.setdefault(source, []).append(target)
    layer: dict[str, int] = {}
    queue: deque[str] = deque()
    if START in outgoing:
        layer[START] = 0
        queue.append(START)
    while queue:
        here = queue.popleft()
        for target in outgoing.get(here, ()):
            if target not in layer:
                layer[target] = layer[here] + 1
                queue.append(target)
    for name in names:
        layer.setdefault(name, 1)
    return layer


def _width(name: str, counts: Mapping[str, int] | None) -> float:
    if name == START:
        return 14.0
    pill = _pill_width(counts.get(name, 0)) + 8 if counts is not None else 0.0
    return max(56.0, len(name) * CHAR_W + 2 * PAD_X + pill)


def _pill_width(count: int) -> float:
    return len(f"{count:,}") * 6.6 + 12


def _below(boxes: Mapping[str, Box], pairs: list[tuple[str, str]]) -> float:
    spans = [abs(boxes[s].layer - boxes[t].layer) for s, t in pairs if _goes_back(boxes[s], boxes[t])]
    return max((BACK_H + 12 * span) * 0.75 + 16 for span in spans) if spans else 0.0


def _bow_extent(a: Box, b: Box, group: list[Edge]) -> float:
    """How far right a same-column bow and its label reach (0 for other edges)."""
    if a.name == b.name or a.layer != b.layer:
        return 0.0
    label = ", ".join(e.label for e in group)
    return max(a.x + a.width, b.x + b.width) + 0.75 * (36 + 10 * abs(a.row - b.row)) + 12 + len(label) * 6.4


def _goes_back(a: Box, b: Box) -> bool:
    return b.layer < a.layer


def _state(machine: MachineDef, box: Box, marks: Marks | None, counts: Mapping[str, int] | None) -> str:
    if box.name == START:
        return f'<circle class="start" cx="{box.cx:.1f}" cy="{box.cy:.1f}" r="7"/>'
    classes = ["state"]
    if marks is not None and box.name == marks.current:
        classes.append("current")
    elif marks is not None and box.name in marks.visited:
        classes.append("visited")
    parts = [
        f'<g class="{" ".join(classes)}" data-state={quoteattr(box.name)}>',
        f"<title>{escape(box.name)}</title>",
        f'<rect class="box" x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" '
        f'height="{NODE_H}" rx="9"/>',
    ]
    if machine.states[box.name].terminal:
        parts.append(f'<rect x="{box.x + 3:.1f}" y="{box.y + 3:.1f}" width="{box.width - 6:.1f}" '
                     f'height="{NODE_H - 6}" rx="7" fill="none"/>')
    parts.append(f'<text x="{box.x + PAD_X:.1f}" y="{box.cy + 4.5:.1f}">{escape(box.name)}</text>')
    if counts is not None:
        count = counts.get(box.name, 0)
        w = _pill_width(count)
        px = box.x + box.width - PAD_X + 6 - w
        parts.append(
            f'<g class="count" data-count="{count}"><rect class="pill" x="{px:.1f}" '
            f'y="{box.cy - 9:.1f}" width="{w:.1f}" height="18" rx="9"/><text class="pill-text" '
            f'x="{px + w / 2:.1f}" y="{box.cy + 4:.1f}" text-anchor="middle">{count:,}</text></g>'
        )
    parts.append("</g>")
    return "".join(parts)


def _edge(a: Box, b: Box, group: list[Edge], marks: Marks | None) -> str:
    steps = tuple(sorted(n for e in group for n in (marks.steps.get(e, ()) if marks else ())))
    label = ", ".join(e.label.replace(VOTE_MARK, "(votes)") for e in group) + (f" {steps_text(steps)}" if steps else "")
    if a.name == b.name:
        sx, sy, ex, ey = a.cx - 12, a.y, a.cx + 12, a.y
        c1, c2 = (a.cx - 34, a.y - LOOP_H - 10), (a.cx + 34, a.y - LOOP_H - 10)
        lx, ly, anchor = a.cx, a.y - LOOP_H + 2, "middle"
    elif a.layer == b.layer:  # a bow on the right of the column
        bulge = 36 + 10 * abs(a.row - b.row)
        sx, sy, ex, ey = a.x + a.width, a.cy, b.x + b.width, b.cy
        c1, c2 = (sx + bulge, sy), (ex + bulge, ey)
        lx, ly, anchor = max(sx, ex) + 0.75 * bulge + 4, (sy + ey) / 2 + 4, "start"
    elif _goes_back(a, b):
        h = BACK_H + 12 * abs(a.layer - b.layer)
        sx, sy, ex, ey = a.cx - 6, a.y + NODE_H, b.cx + 6, b.y + NODE_H
        c1, c2 = (sx, sy + h), (ex, ey + h)
        lx, ly, anchor = (sx + ex) / 2, (sy + ey) / 2 + 0.75 * h + 4, "middle"
    else:
        sx, sy = (a.cx + 7, a.cy) if a.name == START else (a.x + a.width, a.cy)
        ex, ey = b.x, b.cy
        dx = (ex - sx) / 2
        c1, c2 = (sx + dx, sy), (ex - dx, ey)
        lx, ly, anchor = (sx + ex) / 2, (sy + ey) / 2 - 5, "middle"
    classes = "edge" + (" taken" if steps else "") + (" voted" if any(VOTE_MARK in e.label for e in group) else "")
    marker = "arrow-taken" if steps else "arrow"
    source = "" if a.name == START else a.name
    return (
        f'<g class="{classes}" data-from={quoteattr(source)} data-to={quoteattr(b.name)}>'
        f'<path d="M{sx:.1f},{sy:.1f} C{c1[0]:.1f},{c1[1]:.1f} {c2[0]:.1f},{c2[1]:.1f} '
        f'{ex:.1f},{ey:.1f}" marker-end="url(#{marker})"/>'
        f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}">{escape(label)}</text></g>'
    )
