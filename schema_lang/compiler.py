"""compile_machine: a definition's text into a `MachineDef`, or a `SchemaError` listing every problem.

The walk is split by section: `states.py`, `transitions.py` (with `parts.py` and
`follows.py`), then the whole-machine checks of `checks.py`. Every module adds
problems to one `Report` and keeps going, so one run reports everything.
Compiled machines are cached by the sha256 of (source, name): every node compiles
each revision once, however many entries replay it.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

import orjson

from .checks import check_machine
from .conditions import CompileContext
from .cost import check_size, price
from .errors import Problem, SchemaError
from .loader import load
from .model import MachineDef
from .nodes import Node
from .refs import Scope
from .shapes import NAME_PATTERN, Report
from .states import compile_states
from .transitions import compile_transitions

TOP_KEYS = ("machine", "description", "history", "priority", "rules", "states", "transitions")
PRIORITIES = ("normal", "high")  # the admission lane of requests that name no X-Priority
DEFAULT_HISTORY = 100
MAX_HISTORY = 10_000
CACHE_SIZE = 256

_cache: OrderedDict[str, MachineDef] = OrderedDict()
_cache_lock = threading.Lock()


def compile_machine(source: str | bytes, name: str | None = None) -> MachineDef:
    """Compiles a YAML or JSON definition; `name` (e.g. from the URL) wins over `machine:`.

    Raises SchemaError with every problem found, each with its path, line and column.
    """
    raw = source.encode() if isinstance(source, str) else source
    key = hashlib.sha256(orjson.dumps([name]) + b"\0" + raw).hexdigest()
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    machine = _compile(source, name)
    with _cache_lock:
        _cache[key] = machine
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return machine


def revision_of(definition: Any) -> str:
    """`sha256:` + hex digest of the canonical JSON (sorted keys, no whitespace)."""
    canonical = orjson.dumps(definition, option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def machine_summary(machine: MachineDef) -> dict[str, Any]:
    """Name, revision and the sorted state and transition names."""
    return {
        "name": machine.name,
        "revision": machine.revision,
        "states": sorted(machine.states),
        "transitions": sorted(machine.transitions),
    }


def _compile(source: str | bytes, name: str | None) -> MachineDef:
    root = load(source)
    report = Report()
    top = report.mapping(root, "", TOP_KEYS, "a machine definition")
    if top is None:
        raise SchemaError(report.problems)
    machine_name = _machine_name(top, root, name, report)
    history = DEFAULT_HISTORY
    if "history" in top:
        history = report.integer(top["history"], "history", "history", 1, MAX_HISTORY) or history
    priority = _priority(top, report)
    description = ""
    if "description" in top:
        description = report.string(top["description"], "description", "description") or ""
    scope = Scope(report, CompileContext(_rules(top, report), report.problems))
    scope.lines = _text(source).splitlines()
    for section, compile_section in (
        ("states", compile_states),
        ("transitions", compile_transitions),
    ):
        if section in top:
            compile_section(top[section], scope)
        else:
            report.at(root, section, f"a machine needs a '{section}' mapping")
    sized = "states" in top and "transitions" in top
    if sized and check_size(scope, top["states"], top["transitions"]):
        check_machine(scope, top["transitions"])
    if report.problems or machine_name is None:
        raise SchemaError(report.problems)
    transitions = price(scope)  # the cost model: refuses what one request could not afford
    if report.problems:
        raise SchemaError(report.problems)
    canonical = {**root.plain(), "machine": machine_name}
    return MachineDef(
        name=machine_name,
        revision=revision_of(canonical),
        canonical=canonical,
        states={name: site.defn for name, site in scope.states.items()},
        transitions=transitions,
        description=description,
        history=history,
        priority=priority,
    )


def _priority(top: dict[str, Node], report: Report) -> str:
    if "priority" not in top:
        return "normal"
    value = report.string(top["priority"], "priority", "priority")
    if value is not None and value not in PRIORITIES:
        report.at(top["priority"], "priority", f"priority must be one of {', '.join(PRIORITIES)}, not '{value}'")
        return "normal"
    return value or "normal"


def _text(source: str | bytes) -> str:
    return source if isinstance(source, str) else source.decode("utf-8-sig", "replace")


def _machine_name(top: dict[str, Node], root: Node, name: str | None, report: Report) -> str | None:
    declared = top.get("machine")
    written = report.name(declared, "machine", "machine") if declared is not None else None
    if name is not None:
        if not NAME_PATTERN.match(name):
            report.problems.append(
                Problem(
                    "machine",
                    root.line,
                    root.column,
                    f"machine name {name!r} must be 1-200 characters of A-Z a-z 0-9 . _ ~ : @ -",
                )
            )
            return None
        if written is not None and written != name and declared is not None:
            report.at(
                declared,
                "machine",
                f"machine: '{written}' does not match the name '{name}' it is stored under;"
                " make them equal or remove machine:",
            )
        return name
    if declared is None:
        report.at(
            root,
            "machine",
            "the definition has no name: add machine: NAME (or give the name, e.g. in the URL)",
        )
    return written


def _rules(top: dict[str, Node], report: Report) -> dict[str, Node]:
    if "rules" not in top:
        return {}
    rules = report.mapping(top["rules"], "rules", None, "rules")
    return dict(rules or {})
