"""The root error of schema_lang and the problems a definition can have."""

from __future__ import annotations

from dataclasses import dataclass

from .limits import MAX_MESSAGE_CHARS, MAX_PROBLEMS


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a definition; line and column are 1-based (0 = unknown)."""

    path: str
    line: int
    column: int
    message: str

    def as_detail(self) -> dict[str, object]:
        return {"path": self.path, "line": self.line, "column": self.column, "message": self.message}

    def format(self, filename: str) -> str:
        return f"{filename}:{self.line}:{self.column}: {self.path}: {self.message}"


class SchemaError(Exception):
    """A definition that cannot be compiled; carries the problems found.

    At most MAX_PROBLEMS are kept (the first by position), each message and path
    at most MAX_MESSAGE_CHARS, then one more problem says how many were left out:
    an answer's size does not grow with how broken the definition is.
    """

    def __init__(self, problems: list[Problem]):
        ordered = sorted(problems, key=lambda p: (p.line, p.column, p.path))
        self.total = len(ordered)
        kept = [_bounded(p) for p in ordered[:MAX_PROBLEMS]]
        if self.total > MAX_PROBLEMS:
            left = self.total - MAX_PROBLEMS
            kept.append(Problem("", 0, 0, f"{left:,} more problem(s) not listed"))
        self.problems = kept
        first = self.problems[0].message if self.problems else "invalid definition"
        more = f" (and {self.total - 1} more)" if self.total > 1 else ""
        super().__init__(first + more)


def _bounded(problem: Problem) -> Problem:
    if len(problem.message) <= MAX_MESSAGE_CHARS and len(problem.path) <= MAX_MESSAGE_CHARS:
        return problem
    return Problem(
        _clip(problem.path), problem.line, problem.column, _clip(problem.message)
    )


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."
