"""What one compilation collects while it walks a definition.

Names are referenced before they may be defined (a state's timeout names a
transition written further down), so references are recorded with their
position and resolved once everything is parsed (`checks.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .conditions import CompileContext
from .model import StateDef, TransitionDef
from .nodes import Node
from .shapes import Report


@dataclass(frozen=True, slots=True)
class Ref:
    """A use of a state or transition name; `context` starts the error message."""

    kind: Literal["state", "transition"]
    name: str
    node: Node
    path: str
    context: str  # e.g. "transition 'release' goes to"


@dataclass(frozen=True, slots=True)
class StateSite:
    defn: StateDef
    node: Node
    path: str
    position: tuple[int, int]  # where the state's name was written


@dataclass(frozen=True, slots=True)
class CandidateSite:
    """One candidate definition of a transition, with where it was written."""

    defn: TransitionDef
    node: Node
    path: str
    from_node: Node | None
    index: int | None  # position in the transition's list; None for a single mapping
    conditional: bool  # has $dst, $src, requires or follows


@dataclass
class Scope:
    report: Report
    conditions: CompileContext
    refs: list[Ref] = field(default_factory=list)
    states: dict[str, StateSite] = field(default_factory=dict)
    candidates: dict[str, list[CandidateSite]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)  # the source, to place template errors

    def quoted_at(self, node: Node) -> bool:
        """Whether the scalar at `node` starts with a quote (its text starts one column later)."""
        if not 0 < node.line <= len(self.lines):
            return False
        line = self.lines[node.line - 1]
        return 0 < node.column <= len(line) and line[node.column - 1] in "'\""
