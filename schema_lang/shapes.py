"""Shape checks shared by the compiler: known keys, expected types, names, durations.

Every check records a `Problem` at the node's line:column and returns a usable
value (or None) so that compilation carries on and reports every problem at once.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from .errors import Problem
from .limits import MAX_HINT_NAMES, MAX_HINTS, MAX_LISTED_NAMES
from .nodes import Node

_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
MAX_DURATION_MS = 366 * 86_400_000
NAME_PATTERN = re.compile(r"^[A-Za-z0-9._~:@-]{1,200}$")


def did_you_mean(name: str, known: Iterable[str], problems: int = 0) -> str:
    """` (did you mean 'x'?)` when a known name is close to `name`, else ``.

    difflib is slow (microseconds per pair): only the first MAX_HINTS problems of a
    compilation (`problems` found so far) get a hint, so a definition full of
    misspellings cannot make the checker compare every pair of names.
    """
    if problems >= MAX_HINTS:
        return ""
    # a close match has a similar length: compare at most MAX_HINT_NAMES of those
    slack = max(2, len(name) // 3)
    similar = sorted(k for k in known if abs(len(k) - len(name)) <= slack)[:MAX_HINT_NAMES]
    close = difflib.get_close_matches(name, similar, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def listing(names: Iterable[str], limit: int = MAX_LISTED_NAMES) -> str:
    """Sorted names, at most `limit` of them ("a, b, c and 97 more")."""
    ordered = sorted(names)
    if len(ordered) <= limit:
        return ", ".join(ordered) or "none"
    return ", ".join(ordered[:limit]) + f" and {len(ordered) - limit:,} more"


def kind_of(node: Node) -> str:
    value = node.value
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string"


@dataclass
class Report:
    """The problems found so far, with helpers that check one node's shape."""

    problems: list[Problem] = field(default_factory=list)

    def at(self, node: Node, path: str, message: str) -> None:
        self.problems.append(Problem(path, node.line, node.column, message))

    def at_pos(self, pos: tuple[int, int], path: str, message: str) -> None:
        self.problems.append(Problem(path, pos[0], pos[1], message))

    def mapping(
        self, node: Node, path: str, allowed: Collection[str] | None, what: str
    ) -> dict[str, Node] | None:
        """The node's mapping, reporting unknown keys (when `allowed` is given)."""
        if not isinstance(node.value, dict):
            self.at(node, path, f"{what} must be a mapping, not {kind_of(node)}")
            return None
        if allowed is not None:
            for key in node.value:
                if key not in allowed:
                    self.at_pos(
                        node.key_position(key),
                        join(path, key),
                        f"unknown key '{key}' in {what}{did_you_mean(key, allowed, len(self.problems))}"
                        f" (allowed: {listing(allowed)})",
                    )
        return node.value

    def string(self, node: Node, path: str, what: str) -> str | None:
        if isinstance(node.value, str) and node.value != "":
            return node.value
        self.at(node, path, f"{what} must be a non-empty string, not {kind_of(node)}")
        return None

    def name(self, node: Node, path: str, what: str) -> str | None:
        """A state, transition, voter or task name: a string of [A-Za-z0-9._~:@-]."""
        text = self.string(node, path, what)
        if text is not None and not NAME_PATTERN.match(text):
            self.at(
                node, path, f"{what} '{text}' must be 1-200 characters of A-Z a-z 0-9 . _ ~ : @ -"
            )
            return None
        return text

    def boolean(self, node: Node, path: str, what: str) -> bool:
        if isinstance(node.value, bool):
            return node.value
        self.at(node, path, f"{what} must be true or false, not {kind_of(node)}")
        return False

    def integer(self, node: Node, path: str, what: str, low: int, high: int) -> int | None:
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        self.at(node, path, f"{what} must be an integer from {low} to {high}, not {value!r}")
        return None

    def sequence(self, node: Node, path: str, what: str) -> list[Node] | None:
        if isinstance(node.value, list):
            return node.value
        self.at(node, path, f"{what} must be a list, not {kind_of(node)}")
        return None

    def duration_ms(self, node: Node, path: str, what: str) -> int | None:
        """`250ms`, `30s`, `5m`, `1h`, `1d` or a combination like `1h30m`, as milliseconds."""
        text = node.value
        if isinstance(text, str) and text and _DURATION_PART.sub("", text) == "":
            total = sum(int(n) * _UNIT_MS[u] for n, u in _DURATION_PART.findall(text))
            if 0 < total <= MAX_DURATION_MS:
                return total
        self.at(
            node,
            path,
            f"{what} must be a positive duration like 250ms, 30s, 5m, 1h, 1d or 1h30m"
            f" (at most 366d), not {text!r}",
        )
        return None


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key
