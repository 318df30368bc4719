"""Parsed definition nodes: a value plus where it was written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Node:
    """A YAML/JSON value with its 1-based line and column.

    `value` is `dict[str, Node]`, `list[Node]` or a scalar (str, int, float, bool,
    None). For mappings, `keys` holds the position of each key, so that an unknown
    key is reported where it was written. `tag` is "pcre" for the seed's
    `!!pcre /…/` regex form (value then holds the pattern without slashes).
    """

    value: Any
    line: int
    column: int
    tag: str | None = None
    keys: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def plain(self) -> Any:
        """The value as plain JSON data (dicts, lists, scalars), recursively."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value

    def key_position(self, key: str) -> tuple[int, int]:
        return self.keys.get(key, (self.line, self.column))
