"""`fsmcluster status` (every member's health, lag, role, term and snapshot, asked of each
member) and `fsmcluster member add|remove|list` (SPEC 4.8, 5)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from cluster.client import AsyncClient
from cluster.client.errors import FsmError


def add_member_commands(subparsers: Any, leaf: Callable[..., argparse.ArgumentParser]) -> None:
    member = subparsers.add_parser("member", help="the cluster's members (membership changes)")
    members = member.add_subparsers(dest="member_command", metavar="SUBCOMMAND", required=True)
    add = leaf(members, "add", add_member, "add a started node (or start it with --join URL instead)")
    add.add_argument("raft", metavar="HOST:PORT", help="the new node's Raft address")
    add.add_argument("--http", metavar="HOST:PORT", help="the new node's HTTP address")
    remove = leaf(members, "remove", remove_member,
                  "remove a member (the leader hands leadership over first)")
    remove.add_argument("raft", metavar="HOST:PORT", help="the member's Raft address")
    listing = leaf(members, "list", list_members, "the members, their addresses and roles")
    listing.add_argument("--json", action="store_true", help="print the members as JSON")
    status = leaf(subparsers, "status", run_status, "every member's health, lag, role, term and snapshot")
    status.add_argument("--json", action="store_true", help="print every member's /v1/cluster as JSON")


async def add_member(client: AsyncClient, args: argparse.Namespace) -> Any:
    return members_table(await client.add_member(args.raft, args.http))


async def remove_member(client: AsyncClient, args: argparse.Namespace) -> Any:
    return members_table(await client.remove_member(args.raft))


async def list_members(client: AsyncClient, args: argparse.Namespace) -> Any:
    status = await client.cluster_status()
    return status["members"] if args.json else members_table(status)


def members_table(status: dict[str, Any]) -> str:
    rows = [("RAFT", "HTTP", "NAME", "ROLE", "CONNECTED")]
    for m in status.get("members", []):
        rows.append((str(m.get("raft")), str(m.get("http") or "-"), str(m.get("name") or "-"),
                     "leader" if m.get("leader") else "follower", yes(m.get("connected"))))
    return table(rows)


async def run_status(client: AsyncClient, args: argparse.Namespace) -> Any:
    """Ask any node for the members, then every member (at once) for its own view."""
    first = await client.cluster_status()
    views: dict[str, dict[str, Any] | None] = {}

    async def ask(member: dict[str, Any]) -> None:
        views[member["raft"]] = None
        if member.get("http"):
            with contextlib.suppress(FsmError):
                views[member["raft"]] = await client.cluster_status(url=f"http://{member['http']}")

    await asyncio.gather(*(ask(m) for m in first.get("members", [])))
    if args.json:
        return {"members": first.get("members", []), "views": views}
    return format_status(first, views)


def format_status(first: dict[str, Any], views: dict[str, dict[str, Any] | None]) -> str:
    leader = first.get("leader") or {}
    leader_view = views.get(leader.get("raft", "")) or first
    commit = leader_view.get("commit_index") or 0
    lines = [
        f"leader       {leader.get('raft') or 'none'}"
        + (f" (http {leader.get('http')})" if leader.get("http") else ""),
        f"term {leader_view.get('term')}   commit index {commit}   "
        f"applied index {leader_view.get('applied_index')}",
        "",
    ]
    rows = [("RAFT", "HTTP", "NAME", "ROLE", "HEALTH", "TERM", "APPLIED", "LAG", "SNAPSHOT")]
    for member in first.get("members", []):
        view = views.get(member["raft"])
        role = "leader" if member.get("raft") == leader.get("raft") else "follower"
        base = (str(member.get("raft")), str(member.get("http") or "-"), str(member.get("name") or "-"), role)
        if view is None:
            rows.append((*base, "unreachable", "-", "-", "-", "-"))
            continue
        applied = int(view.get("applied_index") or 0)
        snap = view.get("snapshot") or {}
        snapshot = f"{snap.get('store')}@{snap.get('last_index')}" + ("" if snap.get("ok", True) else " FAILING")
        rows.append((*base, "ready" if view.get("ready") else "not ready", str(view.get("term")),
                     str(applied), str(max(0, commit - applied)), snapshot))
    return "\n".join(lines) + table(rows)


def table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows) + "\n"


def yes(value: Any) -> str:
    return "yes" if value else "no"
