"""Views for people looking at the cluster (the dashboard, `fsmcluster object diagram`):
every member's own status in one answer, how many objects of a machine are in each
state, and one object drawn on its machine's diagram with its current state and the
path it took (from its history)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from cluster.core.machines import compiled
from cluster.core.state import ClusterState
from schema_lang.diagrams import marks_from_history

from .. import inputs
from ..context import node_of
from ..responses import json_response, read_state
from .cluster import cluster_status
from .machines import DIAGRAM_TYPES, render_diagram
from .objects import require_machine, require_object
from .table import CONSISTENCY, READ_ERRORS, Param, Route

HISTORY_DRAWN = 1000  # at most this many of an object's newest events make its path
PEER_TIMEOUT = 1.5  # seconds to wait for a member's own status


async def cluster_nodes(request: web.Request) -> web.Response:
    """Each member's `GET /v1/cluster` as that member answers it (asked over HTTP,
    with the caller's credentials); a member that does not answer is `ok: false`."""
    here = cluster_status(node_of(request))
    auth = request.headers.get("Authorization")
    headers = {"Authorization": auth} if auth else {}
    timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
        answers = await asyncio.gather(*(
            member_status(session, m) if not m.get("self") else self_status(m, here)
            for m in here["members"]
        ))
    return json_response({"node": here["node"], "nodes": list(answers)})


async def self_status(member: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {"raft": member["raft"], "http": member["http"], "ok": True, "status": status}


async def member_status(session: aiohttp.ClientSession, member: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"raft": member["raft"], "http": member["http"], "ok": False}
    if not member.get("http"):
        return {**out, "error": "this member's HTTP address is not known yet"}
    try:
        async with session.get(f"http://{member['http']}/v1/cluster") as response:
            body = await response.json(content_type=None)
            if response.status != 200:
                return {**out, "error": f"answered {response.status}: {body}"}
            return {**out, "ok": True, "status": body}
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        return {**out, "error": f"no answer: {exc.__class__.__name__} {exc}".strip()}


async def state_counts(request: web.Request) -> web.Response:
    name = inputs.path_id(request, "name", "machine name")

    def counts(state: ClusterState) -> dict[str, Any]:
        entry = require_machine(state, name)
        found = state.state_counts(name)
        every = {s: 0 for s in sorted(compiled(entry).states)}
        every.update(found)  # objects of older revisions may sit in states no longer defined
        return {"machine": name, "revision": entry.revision, "objects": sum(found.values()),
                "states": every}

    body, headers = await read_state(request, counts)
    return json_response(body, headers=headers)


async def object_diagram(request: web.Request) -> web.Response:
    fmt = inputs.choice(request, "format", tuple(DIAGRAM_TYPES), "mermaid") or "mermaid"
    machine_name = inputs.path_id(request, "machine", "machine name")
    oid = inputs.path_id(request, "id")

    def read(state: ClusterState) -> tuple[Any, Any, list[dict[str, Any]]]:
        record = require_object(state, machine_name, oid)
        entry = require_machine(state, machine_name)
        return entry, record, state.history(machine_name, oid, HISTORY_DRAWN)

    (entry, record, history), headers = await read_state(request, read)
    machine = compiled(entry, record.revision)  # the revision the object lives under
    marks = marks_from_history(machine, record.state, reversed(history))
    # at most MAX_EDGES edges (the cost model), rendered off the request loop
    text = await asyncio.get_running_loop().run_in_executor(None, render_diagram, machine, fmt, marks)
    headers["ETag"] = f'"{record.version}"'
    return web.Response(text=text, content_type=DIAGRAM_TYPES[fmt], headers=headers)


ROUTES = [
    Route("GET", "/v1/cluster/nodes", cluster_nodes, "Every member's own status, asked by this node",
          "cluster", {200: "ClusterNodes"}),
    Route("GET", "/v1/machines/{name}/states", state_counts,
          "How many objects are in each state", "machines",
          {200: "StateCounts", **READ_ERRORS}, params=(CONSISTENCY,)),
    Route("GET", "/v1/machines/{machine}/objects/{id}/diagram", object_diagram,
          "An object on its machine's diagram: current state, path taken", "objects",
          {200: None, **READ_ERRORS}, response_type="text/plain",
          params=(Param("format", "query", "mermaid (default), dot or svg",
                        {"type": "string", "enum": ["mermaid", "dot", "svg"]}), CONSISTENCY)),
]
