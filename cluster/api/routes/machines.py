"""Machines (SPEC 4.1): put a definition, list, get, diagram, delete."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from cluster.core.entries import DeleteMachine, PutMachine
from cluster.core.machines import compile_definition, compiled
from cluster.core.outcome import Rejected
from cluster.core.records import MachineEntry
from cluster.core.state import ClusterState
from schema_lang import MachineDef, render_dot, render_mermaid
from schema_lang.diagrams import Marks
from schema_lang.svg import render_svg

from .. import inputs
from ..context import settings_of
from ..errors import ApiError
from ..responses import found, json_response, propose, read_state
from .table import CONSISTENCY, READ_ERRORS, TIMEOUT, WRITE_ERRORS, Param, Route

DEFINITION_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "application/json")


def machine_name(request: web.Request) -> str:
    return inputs.path_id(request, "name", "machine name")


async def put_machine(request: web.Request) -> web.Response:
    name = machine_name(request)
    settings = settings_of(request)
    limit = min(settings.max_body_bytes, settings.max_definition_bytes)
    body = await inputs.read_body(request, limit, "machine definition")
    try:
        source = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError("invalid_request", f"the definition is not UTF-8 text: {exc}") from None
    if not source.strip():
        raise ApiError("invalid_request", "the request body is empty: send the machine definition")
    try:
        # answer a bad definition at once, off the request loop (the cost model bounds
        # the work); the engine compiles again in the apply, from the same cache
        await asyncio.get_running_loop().run_in_executor(None, compile_definition, name, source)
    except Rejected as exc:
        rejection = exc.rejection
        raise ApiError(rejection.code, rejection.message, rejection.details) from None
    return await propose(request, PutMachine(name, source))


async def list_machines(request: web.Request) -> web.Response:
    machines, headers = await read_state(request, lambda s: s.machines())
    body = {"machines": [{"name": m.name, "revision": m.revision, "objects": m.object_count} for m in machines]}
    return json_response(body, headers=headers)


async def get_machine(request: web.Request) -> web.Response:
    entry, headers = await read_machine(request)
    machine = compiled(entry)
    body: dict[str, Any] = {
        "name": entry.name,
        "revision": entry.revision,
        "definition": machine.canonical,
        "source": entry.sources[entry.revision],
        "revisions": [
            {"revision": rev, "objects": entry.objects_by_revision.get(rev, 0), "current": rev == entry.revision}
            for rev in sorted(entry.sources)
        ],
    }
    return json_response(body, headers=headers)


DIAGRAM_TYPES = {"mermaid": "text/vnd.mermaid", "dot": "text/vnd.graphviz", "svg": "image/svg+xml"}


async def machine_diagram(request: web.Request) -> web.Response:
    fmt = inputs.choice(request, "format", tuple(DIAGRAM_TYPES), "mermaid") or "mermaid"
    with_counts = inputs.choice(request, "counts", ("true", "false"), "false") == "true"
    name = machine_name(request)

    def read(state: ClusterState) -> tuple[MachineEntry | None, dict[str, int] | None]:
        return state.machine(name), state.state_counts(name) if with_counts else None

    (entry, counts), headers = await read_state(request, read)
    machine = compiled(found(entry, "machine_not_found", f"machine '{name}' does not exist"))
    # at most MAX_EDGES edges (the cost model), rendered off the request loop
    text = await asyncio.get_running_loop().run_in_executor(
        None, render_diagram, machine, fmt, None, counts
    )
    return web.Response(text=text, content_type=DIAGRAM_TYPES[fmt], headers=headers)


def render_diagram(
    machine: MachineDef, fmt: str, marks: Marks | None = None, counts: dict[str, int] | None = None
) -> str:
    if fmt == "svg":
        return render_svg(machine, marks, counts)
    return render_mermaid(machine, marks) if fmt == "mermaid" else render_dot(machine, marks)


async def delete_machine(request: web.Request) -> web.Response:
    return await propose(request, DeleteMachine(machine_name(request)))


async def read_machine(request: web.Request) -> tuple[MachineEntry, dict[str, str]]:
    name = machine_name(request)
    entry, headers = await read_state(request, lambda s: s.machine(name))
    return found(entry, "machine_not_found", f"machine '{name}' does not exist"), headers


PATH = "/v1/machines/{name}"
ROUTES = [
    Route("PUT", PATH, put_machine, "Create or update a machine definition", "machines",
          {200: "MachineSummary", 201: "MachineSummary", **WRITE_ERRORS},
          request="MachineDefinition", request_types=DEFINITION_TYPES, params=(TIMEOUT,)),
    Route("GET", "/v1/machines", list_machines, "List machines", "machines",
          {200: "MachineList", **READ_ERRORS}, params=(CONSISTENCY,)),
    Route("GET", PATH, get_machine, "Get a machine, its definition and revisions", "machines",
          {200: "Machine", **READ_ERRORS}, params=(CONSISTENCY,)),
    Route("GET", PATH + "/diagram", machine_diagram, "Render a machine as Mermaid or DOT", "machines",
          {200: None, **READ_ERRORS}, response_type="text/plain",
          params=(Param("format", "query", "mermaid (default), dot, or svg (a laid-out picture)",
                        {"type": "string", "enum": ["mermaid", "dot", "svg"]}),
                  Param("counts", "query", "svg: show how many objects are in each state",
                        {"type": "string", "enum": ["true", "false"]}), CONSISTENCY)),
    Route("DELETE", PATH, delete_machine, "Delete a machine that has no objects", "machines",
          {200: "Deleted", **WRITE_ERRORS}, params=(TIMEOUT,)),
]
