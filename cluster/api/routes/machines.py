"""Machines (SPEC 4.1): put a definition, list, get, diagram, delete."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from cluster.core.entries import DeleteMachine, PutMachine
from cluster.core.machines import compile_definition, compiled
from cluster.core.outcome import Rejected
from cluster.core.records import MachineEntry
from schema_lang import render_dot, render_mermaid

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


async def machine_diagram(request: web.Request) -> web.Response:
    fmt = inputs.choice(request, "format", ("mermaid", "dot"), "mermaid")
    entry, headers = await read_machine(request)
    machine = compiled(entry)
    render = render_mermaid if fmt == "mermaid" else render_dot
    # at most MAX_EDGES edges (the cost model), rendered off the request loop
    text = await asyncio.get_running_loop().run_in_executor(None, render, machine)
    content_type = "text/vnd.mermaid" if fmt == "mermaid" else "text/vnd.graphviz"
    return web.Response(text=text, content_type=content_type, headers=headers)


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
          params=(Param("format", "query", "mermaid (default) or dot",
                        {"type": "string", "enum": ["mermaid", "dot"]}), CONSISTENCY)),
    Route("DELETE", PATH, delete_machine, "Delete a machine that has no objects", "machines",
          {200: "Deleted", **WRITE_ERRORS}, params=(TIMEOUT,)),
]
