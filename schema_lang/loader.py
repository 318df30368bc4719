"""Safe YAML/JSON text into `Node` trees that remember 1-based line:column.

This module owns the only contact with the YAML library. It does not use PyYAML's
composer: the composer recurses once per nesting level (a 256 KiB `[[[[…` would
hit RecursionError) and expands aliases (billion-laughs). Instead the node tree is
built iteratively from the parser's event stream, so every limit is enforced
*while* parsing, before any expansion or deep work happens:

- sources larger than `max_bytes` are refused before the parser runs;
- any anchor or alias is refused on sight (definitions never need them);
- nesting deeper than `max_depth` collections is refused at the opening bracket;
- a second document, non-string or duplicate mapping keys, unsupported tags and
  non-finite numbers are problems.

Scalars are resolved exactly like `yaml.SafeLoader` (YAML 1.1: `yes` is true,
`0x1f` is 31), except that timestamps stay strings: a definition is JSON data.
The seed's `!!pcre /…/` tag becomes a string node with `tag="pcre"`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import Problem, SchemaError
from .limits import MAX_INT, MIN_INT
from .nodes import Node

DEFAULT_MAX_BYTES = 262_144
DEFAULT_MAX_DEPTH = 64

_TAG_PREFIX = "tag:yaml.org,2002:"
_PCRE_TAG = _TAG_PREFIX + "pcre"
_SCALAR_TAGS = {_TAG_PREFIX + t for t in ("str", "int", "float", "bool", "null")}
_COLLECTION_TAGS = {_TAG_PREFIX + "map", _TAG_PREFIX + "seq", _TAG_PREFIX + "omap"}
# libyaml's parser is C and non-recursive; fall back to the pure-Python one.
_Parser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_resolver = yaml.resolver.Resolver()
_constructor = yaml.constructor.SafeConstructor()


class _Fatal(Exception):
    """Stops the event loop; the problem has already been recorded."""


@dataclass
class _Frame:
    """One open collection: its node and, for a mapping, the key awaiting a value."""

    node: Node
    path: str
    key: str | None = None
    key_ok: bool = False
    expecting_key: bool = True


@dataclass
class _Builder:
    max_depth: int
    problems: list[Problem] = field(default_factory=list)
    stack: list[_Frame] = field(default_factory=list)
    root: Node | None = None
    documents: int = 0

    def fail(self, mark: Any, path: str, message: str) -> None:
        line, column = _position(mark)
        self.problems.append(Problem(path, line, column, message))

    def fatal(self, mark: Any, path: str, message: str) -> _Fatal:
        self.fail(mark, path, message)
        return _Fatal()

    def child_path(self) -> str:
        """The path of the node about to be attached to the innermost collection."""
        if not self.stack:
            return ""
        frame = self.stack[-1]
        if isinstance(frame.node.value, list):
            return f"{frame.path}[{len(frame.node.value)}]"
        if frame.expecting_key:
            return frame.path
        return _join(frame.path, frame.key or "?")

    def event(self, event: Any) -> None:
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise self.fatal(
                    event.start_mark,
                    "",
                    "only one YAML document is allowed (remove the second '---')",
                )
        elif isinstance(event, yaml.AliasEvent):
            raise self.fatal(
                event.start_mark,
                self.child_path(),
                f"YAML aliases (*{event.anchor}) are not allowed; write the value out in full",
            )
        elif isinstance(event, yaml.ScalarEvent):
            self._check_anchor(event)
            self.attach(self.scalar(event), event)
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            self.open(event)
        elif isinstance(event, yaml.CollectionEndEvent):
            frame = self.stack.pop()
            self.attach(frame.node, event)

    def _check_anchor(self, event: Any) -> None:
        if event.anchor is not None:
            raise self.fatal(
                event.start_mark,
                self.child_path(),
                f"YAML anchors (&{event.anchor}) are not allowed; use rules: and use: to share rules",
            )

    def too_deep_message(self) -> str:
        return f"nesting is deeper than {self.max_depth} levels"

    def open(self, event: Any) -> None:
        self._check_anchor(event)
        path = self.child_path()
        if len(self.stack) >= self.max_depth:
            raise self.fatal(event.start_mark, path, self.too_deep_message())
        if event.tag is not None and event.tag not in _COLLECTION_TAGS and event.tag != "!":
            self.fail(event.start_mark, path, f"unsupported tag {_short(event.tag)}")
        line, column = _position(event.start_mark)
        mapping = isinstance(event, yaml.MappingStartEvent)
        value: dict[str, Node] | list[Node] = {} if mapping else []
        node = Node(value, line, column, keys={} if mapping else {})
        self.stack.append(_Frame(node, path))

    def attach(self, node: Node, event: Any) -> None:
        if not self.stack:
            self.root = node
            return
        frame = self.stack[-1]
        container = frame.node.value
        if isinstance(container, list):
            container.append(node)
        elif frame.expecting_key:
            self._take_key(frame, node, event)
        else:
            if frame.key_ok and frame.key is not None:
                container[frame.key] = node
            frame.expecting_key = True

    def _take_key(self, frame: _Frame, key: Node, event: Any) -> None:
        frame.expecting_key = False
        frame.key_ok = False
        if not isinstance(key.value, str) or key.tag is not None:
            self.fail(
                event.start_mark if isinstance(event, yaml.ScalarEvent) else _mark_of(key),
                frame.path,
                f"mapping keys must be strings, not {_kind(key.value)} {_clip(key.plain())};"
                " quote the key",
            )
            return
        keys: dict[str, tuple[int, int]] = frame.node.keys  # type: ignore[assignment]
        if key.value in keys:
            first = keys[key.value][0]
            self.fail(
                event.start_mark,
                _join(frame.path, key.value),
                f"duplicate key '{key.value}' (first written on line {first})",
            )
            return
        keys[key.value] = (key.line, key.column)
        frame.key = key.value
        frame.key_ok = True

    def scalar(self, event: Any) -> Node:
        line, column = _position(event.start_mark)
        path = self.child_path()
        tag = event.tag
        if tag == _PCRE_TAG:
            return Node(self._pcre(event, path), line, column, tag="pcre")
        if tag is None or tag == "!":
            tag = _resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
        return Node(self._construct(event, tag, path), line, column)

    def _pcre(self, event: Any, path: str) -> str:
        text: str = event.value
        if len(text) >= 2 and text.startswith("/"):
            end = text.rfind("/")
            if end > 0:
                if end != len(text) - 1:
                    self.fail(
                        event.start_mark,
                        path,
                        f"!!pcre flags '{text[end + 1 :]}' are not supported;"
                        " write them inside the pattern, e.g. (?i)",
                    )
                return text[1:end]
        return text  # a bare pattern without slashes is accepted as is

    def _construct(self, event: Any, tag: str, path: str) -> Any:
        if tag not in _SCALAR_TAGS:
            if tag == _TAG_PREFIX + "timestamp" and event.tag is None:
                return event.value  # a date is JSON text, not a datetime
            if tag in (_TAG_PREFIX + "merge", _TAG_PREFIX + "value") and event.tag is None:
                return event.value
            self.fail(event.start_mark, path, f"unsupported tag {_short(tag)}")
            return event.value
        scalar = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            # Call the tag's constructor directly: construct_object would cache every
            # node in the shared constructor forever.
            value = _constructor.yaml_constructors[tag](_constructor, scalar)
        except (ValueError, yaml.YAMLError):
            # e.g. an integer beyond Python's 4,300-digit conversion limit
            self.fail(event.start_mark, path, f"{_clip(event.value)} is not a usable {_short(tag)}")
            return event.value
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(event.start_mark, path, f"{event.value!r} is not a JSON number")
            return None
        if isinstance(value, int) and not isinstance(value, bool) and not MIN_INT <= value <= MAX_INT:
            self.fail(
                event.start_mark,
                path,
                f"{_clip(event.value)} is beyond the integer limit of ±2^63 (64-bit integers)",
            )
            return None
        return value


def load(
    source: str | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
) -> Node:
    """Parses one YAML (or JSON) document into a `Node` tree.

    Raises SchemaError with every problem found before a fatal one (syntax error,
    alias, too deep, too large, second document); positions are 1-based.
    """
    text = _text(source, max_bytes)
    builder = _Builder(max_depth)
    try:
        for event in yaml.parse(text, Loader=_Parser):
            builder.event(event)
    except _Fatal:
        pass
    except yaml.MarkedYAMLError as exc:
        if _is_nesting_refusal(exc):
            # libyaml (PyYAML >= 6.0.4) has a nesting limit of its own and may reach it
            # first, scanning ahead of our events: the user gets our limit's wording.
            builder.fail(exc.problem_mark, builder.child_path(), builder.too_deep_message())
        else:
            builder.fail(exc.problem_mark, builder.child_path(), _syntax_message(exc, text))
    except yaml.reader.ReaderError as exc:
        builder.problems.append(
            Problem("", *_offset_position(text, exc), f"not valid YAML: {_reader_message(exc)}")
        )
    except yaml.YAMLError as exc:
        builder.problems.append(Problem("", 1, 1, f"not valid YAML: {exc}"))
    if builder.problems:
        raise SchemaError(builder.problems)
    return builder.root if builder.root is not None else Node(None, 1, 1)


def _text(source: str | bytes, max_bytes: int) -> str:
    # A str has at least as many UTF-8 bytes as characters: refuse cheaply first.
    if len(source) > max_bytes or (
        isinstance(source, str) and len(source.encode("utf-8", "surrogatepass")) > max_bytes
    ):
        raise SchemaError(
            [Problem("", 1, 1, f"the definition is larger than the limit of {max_bytes} bytes")]
        )
    if isinstance(source, str):
        return source
    try:
        return source.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _offset_position(source[: exc.start].decode("utf-8", "replace"), None)
        raise SchemaError(
            [Problem("", line, column, f"the definition is not valid UTF-8 (byte {exc.start})")]
        ) from None


def _is_nesting_refusal(exc: yaml.MarkedYAMLError) -> bool:
    return "nesting depth" in (exc.problem or "")


def _syntax_message(exc: yaml.MarkedYAMLError, text: str) -> str:
    parts = [p for p in (exc.context, exc.problem) if p]
    message = "; ".join(parts) or "syntax error"
    if _char_at(text, exc.problem_mark) == "\t":
        message += " (a tab; YAML indentation must use spaces)"
    return f"not valid YAML: {message}"


def _reader_message(exc: yaml.reader.ReaderError) -> str:
    character = exc.character
    code = ord(character) if isinstance(character, str) else character
    return f"character #x{code:04x} is not allowed ({exc.reason})"


def _char_at(text: str, mark: Any) -> str:
    if mark is None:
        return ""
    lines = text.split("\n", mark.line + 1)
    if mark.line >= len(lines) or mark.column >= len(lines[mark.line]):
        return ""
    return lines[mark.line][mark.column]


def _offset_position(text: str, exc: Exception | None) -> tuple[int, int]:
    """1-based line:column of a character offset (the end of `text` when no offset)."""
    offset = getattr(exc, "position", None) if exc is not None else None
    prefix = text if offset is None else text[:offset]
    line = prefix.count("\n") + 1
    return line, len(prefix) - (prefix.rfind("\n") + 1) + 1


def _position(mark: Any) -> tuple[int, int]:
    if mark is None:
        return 0, 0
    return mark.line + 1, mark.column + 1


def _mark_of(node: Node) -> Any:
    return yaml.Mark("", 0, node.line - 1, node.column - 1, None, 0)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _clip(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(tag: str) -> str:
    return "!!" + tag[len(_TAG_PREFIX) :] if tag.startswith(_TAG_PREFIX) else tag


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict | list):
        return "a collection"
    return "tagged"
