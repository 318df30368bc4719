"""`fsmcluster schema check|diagram`: offline checks and drawings of machine definitions.

These commands never talk to a cluster: they compile the file locally with the
same compiler the nodes use, so `check` reports exactly what `PUT /v1/machines`
would refuse, as `FILE:LINE:COLUMN: PATH: MESSAGE` lines (one per problem).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from schema_lang import MachineDef, SchemaError, compile_machine, render_dot, render_mermaid
from schema_lang.loader import load
from schema_lang.shapes import NAME_PATTERN

RENDERERS = {"mermaid": render_mermaid, "dot": render_dot}


def add_schema_commands(subparsers: Any) -> None:
    schema = subparsers.add_parser("schema", help="check or draw machine definitions offline")
    commands = schema.add_subparsers(dest="schema_command", metavar="SUBCOMMAND", required=True)
    check = commands.add_parser("check", help="report every problem of each definition")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(handler=run_check)
    diagram = commands.add_parser("diagram", help="print a Mermaid or Graphviz DOT diagram")
    diagram.add_argument("file", metavar="FILE")
    diagram.add_argument("--format", choices=sorted(RENDERERS), default="mermaid")
    diagram.set_defaults(handler=run_diagram)


def run_check(args: argparse.Namespace) -> int:
    failed = False
    for file in args.files:
        try:
            machine = compile_file(file)
        except OSError as exc:
            print(f"{file}:0:0: : cannot read the file: {exc.strerror or exc}")
            failed = True
        except SchemaError as exc:
            for problem in exc.problems:
                print(problem.format(file))
            failed = True
        else:
            print(
                f"{file}: ok ({len(machine.states)} states, {len(machine.transitions)}"
                f" transitions, revision {machine.revision})"
            )
    return 1 if failed else 0


def run_diagram(args: argparse.Namespace) -> int:
    try:
        machine = compile_file(args.file)
    except OSError as exc:
        print(f"{args.file}:0:0: : cannot read the file: {exc.strerror or exc}")
        return 1
    except SchemaError as exc:
        for problem in exc.problems:
            print(problem.format(args.file))
        return 1
    print(RENDERERS[args.format](machine), end="")
    return 0


def compile_file(file: str) -> MachineDef:
    """Compiles a definition file; one without `machine:` is named after the file."""
    source = Path(file).read_bytes()
    return compile_machine(source, None if _declares_name(source) else _file_name(file))


def _declares_name(source: bytes) -> bool:
    try:
        root = load(source)
    except SchemaError:
        return True  # compile_machine reports the same problems
    return not isinstance(root.value, dict) or "machine" in root.value


def _file_name(file: str) -> str | None:
    stem = Path(file).stem
    return stem if NAME_PATTERN.match(stem) else None
