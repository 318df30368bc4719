"""docs/SCHEMA.md stays true: every YAML example compiles, every keyword of the language
has an example, and every `console` line answers what the doc says (replayed in the engine)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from cluster.core import engine
from cluster.core.entries import Entry, PutMachine, Transition, Vote
from cluster.core.state import ClusterState
from schema_lang import compile_machine
from schema_lang.compiler import TOP_KEYS
from schema_lang.follows import FOLLOWS_KEYS
from schema_lang.parts import IF_KEYS, THEN_KEYS, VOTES_KEYS
from schema_lang.rule_keywords import KEYWORDS
from schema_lang.states import STATE_KEYS, TIMEOUT_KEYS
from schema_lang.transitions import TRANSITION_KEYS

DOC = Path(__file__).resolve().parents[2] / "docs" / "SCHEMA.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(kind: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(DOC.read_text()) if lang == kind]


def keys_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(map(str, value)) | {k for v in value.values() for k in keys_in(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_in(v)}
    return set()


def test_every_yaml_example_compiles() -> None:
    assert len(blocks("yaml")) >= 8
    for source in blocks("yaml"):
        compile_machine(source)


def test_every_keyword_has_an_example() -> None:
    used = set().union(*(keys_in(yaml.safe_load(b)) for b in blocks("yaml")))
    keywords = (set(TOP_KEYS) | set(STATE_KEYS) | set(TIMEOUT_KEYS) | set(TRANSITION_KEYS) | set(KEYWORDS)
                | set(VOTES_KEYS) | set(THEN_KEYS) | set(IF_KEYS) | set(FOLLOWS_KEYS) | {"$vars", "message"})
    assert not keywords - used, f"keywords without an example in docs/SCHEMA.md: {sorted(keywords - used)}"


def run(state: ClusterState, argv: list[str], at_ms: int) -> str:
    if argv[0] == "transition":
        machine, oid, name, *rest = argv[1:]
        data = orjson.loads(rest[rest.index("--data") + 1]) if "--data" in rest else None
        command: Any = Transition(machine, oid, name, data)
    elif argv[0] == "vote":
        machine, oid, voter, choice = argv[1:]
        change = state.get_object(machine, oid).pending.change  # type: ignore[union-attr]
        command = Vote(machine, oid, voter, choice == "--approve", change)
    else:
        raise AssertionError(f"docs/SCHEMA.md: no replay for `fsmcluster {' '.join(argv)}`")
    outcome = engine.apply(state, Entry(command, at_ms=at_ms))
    if outcome.error is not None:
        return outcome.error.code
    body = outcome.body or {}
    return str(body.get("outcome") or outcome.status)


@pytest.mark.parametrize("index", range(len(blocks("console"))))
def test_console_lines_answer_what_the_doc_says(index: int) -> None:
    state = ClusterState()
    for at, source in enumerate(blocks("yaml")):
        name = yaml.safe_load(source)["machine"]
        assert engine.apply(state, Entry(PutMachine(name, source), at_ms=at + 1)).error is None
    for n, line in enumerate(blocks("console")[index].splitlines()):
        command, _, expected = line.partition("# ->")
        argv = shlex.split(command.strip().removeprefix("$").strip())
        assert argv[0] == "fsmcluster", line
        got = run(state, argv[1:], 1000 + n)
        assert got == expected.strip(), f"{line!r} answered {got}"
