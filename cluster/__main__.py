"""fsmcluster command line: builds the parser from subcommand groups and dispatches.

Each group module exposes `add_<group>_commands(subparsers)`; every leaf command
sets `handler`, a function of the parsed arguments that returns the exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .cli.bench import add_bench_command
from .cli.client import add_client_commands
from .cli.node import add_node_command
from .cli.schema import add_schema_commands
from .cli.snapshot import add_snapshot_commands
from .cli.up import add_up_command

CommandGroup = Callable[[Any], None]
COMMAND_GROUPS: tuple[CommandGroup, ...] = (
    add_schema_commands,
    add_node_command,
    add_up_command,
    add_client_commands,
    add_bench_command,
    add_snapshot_commands,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fsmcluster", description="A replicated store of state-machine objects."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_commands in COMMAND_GROUPS:
        add_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
