"""Client commands of the CLI: `machine`, `object`, `transition`, `vote`, `withdraw`, `watch`
(and, from members.py, `status` and `member`).

They talk to a running cluster through `cluster.client` and fail over between the
nodes given by `--url` (repeatable) or `FSM_URL` (comma-separated), by default the
three nodes `fsmcluster up` starts. Data is printed as indented JSON on stdout; an
error as `error: <code>: <message>` (and its details) on stderr, with exit status
1 for a refused request, 2 for a usage mistake, 3 when no node could answer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import yaml

from cluster.client import AsyncClient
from cluster.client.errors import FsmError, Timeout, Unavailable

from .members import add_member_commands

DEFAULT_URLS = ("http://127.0.0.1:8101", "http://127.0.0.1:8102", "http://127.0.0.1:8103")
EXIT_REQUEST, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3

Action = Callable[[AsyncClient, argparse.Namespace], Awaitable[Any]]


class UsageError(Exception):
    """A command-line value that cannot be used (bad JSON in --data, unreadable file)."""


def add_client_commands(subparsers: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", action="append", default=None, metavar="URL",
        help=f"a node's base URL; repeat for failover [FSM_URL, comma-separated; default {DEFAULT_URLS[0]} ...]",
    )
    common.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="give up after this long, failovers included (default 30)")

    def leaf(group: Any, name: str, action: Action, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = group.add_parser(name, parents=[common], help=help_text)
        parser.set_defaults(handler=command(action))
        return parser

    machine = subparsers.add_parser("machine", help="machine definitions on the cluster")
    machines = machine.add_subparsers(dest="machine_command", metavar="SUBCOMMAND", required=True)
    apply_ = leaf(machines, "apply", apply_machine, "create or update a machine from a YAML/JSON file")
    apply_.add_argument("file", metavar="FILE", help="definition file, or - for stdin")
    apply_.add_argument("--name", help="machine name (default: its `machine:` key, else the file name)")
    leaf(machines, "list", lambda c, a: c.list_machines(), "list machines")
    leaf(machines, "get", lambda c, a: c.get_machine(a.name), "a machine's definition and revisions"
         ).add_argument("name", metavar="NAME")
    diagram = leaf(machines, "diagram", lambda c, a: c.diagram(a.name, a.format), "draw a machine")
    diagram.add_argument("name", metavar="NAME")
    diagram.add_argument("--format", choices=("mermaid", "dot", "svg"), default="mermaid")
    leaf(machines, "delete", lambda c, a: c.delete_machine(a.name), "delete a machine without objects"
         ).add_argument("name", metavar="NAME")

    obj = subparsers.add_parser("object", help="objects of a machine")
    objects = obj.add_subparsers(dest="object_command", metavar="SUBCOMMAND", required=True)
    get = leaf(objects, "get", get_object, "one object")
    add_object_args(get)
    get.add_argument("--stale", action="store_true", help="local read that may lag (consistency=stale)")
    listing = leaf(objects, "list", list_objects, "objects by id, one page")
    listing.add_argument("machine", metavar="MACHINE")
    listing.add_argument("--state", help="only objects in this state")
    listing.add_argument("--limit", type=int, help="at most this many (1-1000, default 100)")
    listing.add_argument("--after", metavar="ID", help="start after this id (the previous page's next)")
    listing.add_argument("--prefix", help="only ids that start with this")
    history = leaf(objects, "history", lambda c, a: c.history(a.machine, a.id, limit=a.limit),
                   "an object's events, newest first")
    add_object_args(history)
    history.add_argument("--limit", type=int, help="at most this many events")
    add_object_args(leaf(objects, "delete", lambda c, a: c.delete_object(a.machine, a.id),
                         "remove an object (administrative)"))
    object_diagram = leaf(objects, "diagram", lambda c, a: c.object_diagram(a.machine, a.id, a.format),
                          "an object on its machine's diagram: current state, path taken")
    add_object_args(object_diagram)
    object_diagram.add_argument("--format", choices=("mermaid", "dot", "svg"), default="mermaid")

    transition = leaf(subparsers, "transition", run_transition, "apply a transition to an object")
    add_object_args(transition)
    transition.add_argument("transition", metavar="TRANSITION")
    transition.add_argument("--data", help="payload: a JSON object, or @FILE")
    transition.add_argument("--expected-version", type=int, metavar="N",
                            help="apply only if the object is at this version")
    transition.add_argument("--idempotency-key", metavar="KEY", help="default: a fresh uuid4")

    vote = leaf(subparsers, "vote", run_vote, "vote on an object's pending change")
    add_object_args(vote)
    vote.add_argument("voter", metavar="VOTER")
    choice = vote.add_mutually_exclusive_group(required=True)
    choice.add_argument("--approve", dest="approve", action="store_true")
    choice.add_argument("--reject", dest="approve", action="store_false")
    vote.add_argument("--change", help="the pending change's id (default: the current one)")
    add_object_args(leaf(subparsers, "withdraw", lambda c, a: c.withdraw(a.machine, a.id),
                         "withdraw an object's pending change"))

    watch = leaf(subparsers, "watch", run_watch, "print the event feed live (Ctrl-C stops)")
    watch.add_argument("--machine", action="append", help="only this machine's events; repeatable")
    watch.add_argument("--object", action="append", metavar="ID", help="only this object; repeatable")
    watch.add_argument("--kind", action="append", help="only this kind of event; repeatable")
    watch.add_argument("--since", type=int, metavar="N", help="start after log index N (default: now)")
    watch.add_argument("--json", action="store_true", help="one JSON object per line")

    add_member_commands(subparsers, leaf)


def add_object_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("machine", metavar="MACHINE")
    parser.add_argument("id", metavar="ID")


def resolve_urls(given: Sequence[str] | None, environ: dict[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    if given:
        return list(given)
    if env.get("FSM_URL", "").strip():
        return [u for u in env["FSM_URL"].split(",") if u.strip()]
    return list(DEFAULT_URLS)


def command(action: Action) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        try:
            result = asyncio.run(_run(action, args))
        except UsageError as exc:
            print(f"error: usage: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except FsmError as exc:
            print_error(exc)
            return EXIT_UNAVAILABLE if isinstance(exc, Unavailable | Timeout) else EXIT_REQUEST
        except KeyboardInterrupt:  # `watch` runs until stopped
            return 130
        if isinstance(result, str):
            sys.stdout.write(result if result.endswith("\n") else result + "\n")
        elif result is not None:
            print_json(result)
        return 0

    return handler


async def _run(action: Action, args: argparse.Namespace) -> Any:
    async with AsyncClient(resolve_urls(args.url), deadline=args.timeout) as client:
        return await action(client, args)


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def print_error(exc: FsmError) -> None:
    print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
    for detail in exc.details:  # the message already says what details without one hold
        if not detail.get("message"):
            continue
        where = detail.get("path")
        line = f":{detail['line']}:{detail.get('column', 0)}" if detail.get("line") else ""
        text = detail["message"]
        print(f"  {where}{line}: {text}" if where else f"  {text}", file=sys.stderr)


# ---- actions ------------------------------------------------------------------------

async def apply_machine(client: AsyncClient, args: argparse.Namespace) -> Any:
    source, stem = read_source(args.file)
    name = args.name or declared_name(source) or stem
    if not name:
        raise UsageError("cannot tell the machine's name: add `machine: NAME` or pass --name")
    return await client.put_machine(name, source)


def read_source(file: str) -> tuple[bytes, str | None]:
    try:
        if file == "-":
            return sys.stdin.buffer.read(), None
        return Path(file).read_bytes(), Path(file).stem
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None


def declared_name(source: bytes) -> str | None:
    try:
        document = yaml.safe_load(source)
    except yaml.YAMLError:
        return None  # the server reports the problems with line and column
    name = document.get("machine") if isinstance(document, dict) else None
    return name if isinstance(name, str) else None


async def get_object(client: AsyncClient, args: argparse.Namespace) -> Any:
    return await client.get_object(
        args.machine, args.id, consistency="stale" if args.stale else "linearizable"
    )


async def list_objects(client: AsyncClient, args: argparse.Namespace) -> Any:
    return await client.list_objects(
        args.machine, state=args.state, limit=args.limit, after=args.after, prefix=args.prefix
    )


def parse_data(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    if text.startswith("@"):
        source, _ = read_source(text[1:])
        text = source.decode("utf-8", "replace")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"--data is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError("--data must be a JSON object, e.g. '{\"owner\": \"w1\"}'")
    return value


async def run_transition(client: AsyncClient, args: argparse.Namespace) -> Any:
    return await client.transition(
        args.machine, args.id, args.transition, parse_data(args.data),
        expected_version=args.expected_version, idempotency_key=args.idempotency_key,
    )


async def run_vote(client: AsyncClient, args: argparse.Namespace) -> Any:
    change = args.change
    if change is None:
        pending = (await client.get_object(args.machine, args.id)).get("pending")
        if not pending:
            raise FsmError("no_pending_change", f"object '{args.id}' has no pending change to vote on")
        change = pending["change"]
    return await client.vote(args.machine, args.id, args.voter, args.approve, change)


async def run_watch(client: AsyncClient, args: argparse.Namespace) -> None:
    if args.since is not None and args.since < 0:
        raise UsageError("--since must be a log index >= 0")
    watch = client.watch(machine=args.machine, object=args.object, kind=args.kind, since=args.since)
    try:
        async for event in watch:
            line = orjson.dumps(event).decode() if args.json else format_event(event)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    finally:
        await watch.aclose()


def format_event(e: dict[str, Any]) -> str:
    """One readable line: index, time, object, kind and what the kind is about."""
    kind = e.get("kind")
    about = {
        "created": f"{e.get('transition')} -> {e.get('to')}",
        "transition": f"{e.get('transition')} {e.get('from')} -> {e.get('to')}",
        "removed": f"({e.get('reason', '')})",
        "emitted": f"{e.get('event')}",
        "task": f"{e.get('task')} {e.get('status')}" + (f" ({e['error']})" if e.get("error") else ""),
        "vote": f"{e.get('transition')} {e.get('outcome')}"
                + (f" by {e['voter']} ({'approve' if e.get('approve') else 'reject'})" if e.get("voter") else "")
                + (" tally {approve}/{required} approve, {reject} reject".format(**e["tally"])
                   if e.get("tally") else ""),
        "expired": f"{e.get('expired', '')} {e.get('transition')}: {e.get('reason', '')}",
    }.get(str(kind), "")
    data = orjson.dumps(e.get("data")).decode() if e.get("data") else ""
    return f"#{e.get('index')} {e.get('at')} {e.get('machine')}/{e.get('object')} v{e.get('version')} " \
           f"{kind} {about} {data}".rstrip()
