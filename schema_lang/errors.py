"""The root error of schema_lang and the problems a definition can have."""

from __future__ import annotations

from dataclasses import dataclass


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
    """A definition that cannot be compiled; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.line, p.column, p.path))
        first = self.problems[0].message if self.problems else "invalid definition"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first + more)
