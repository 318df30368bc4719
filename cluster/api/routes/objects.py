"""Objects (SPEC 4.2): get (with ETag), list with paging and a state filter, history,
and administrative delete."""

from __future__ import annotations

from aiohttp import web

from cluster.core.entries import DeleteObject
from cluster.core.records import MachineEntry, ObjectRecord
from cluster.core.state import ClusterState

from .. import inputs
from ..errors import ApiError
from ..responses import json_response, propose, read_state
from .table import CONSISTENCY, LIMIT, READ_ERRORS, TIMEOUT, WRITE_ERRORS, Param, Route


def object_path(request: web.Request) -> tuple[str, str]:
    return inputs.path_id(request, "machine", "machine name"), inputs.path_id(request, "id")


def require_object(state: ClusterState, machine: str, oid: str) -> ObjectRecord:
    require_machine(state, machine)
    record = state.get_object(machine, oid)
    if record is None:
        raise ApiError("object_not_found", f"object '{oid}' of machine '{machine}' does not exist")
    return record


def require_machine(state: ClusterState, machine: str) -> MachineEntry:
    entry = state.machine(machine)
    if entry is None:
        raise ApiError("machine_not_found", f"machine '{machine}' does not exist")
    return entry


async def get_object(request: web.Request) -> web.Response:
    machine, oid = object_path(request)
    record, headers = await read_state(request, lambda s: require_object(s, machine, oid))
    headers["ETag"] = f'"{record.version}"'
    return json_response(record.to_json(), headers=headers)


async def list_objects(request: web.Request) -> web.Response:
    machine = inputs.path_id(request, "machine", "machine name")
    state_filter = request.query.get("state") or None
    after = request.query.get("after") or None
    if after is not None:
        inputs.check_id(after, "after")
    prefix = request.query.get("prefix") or None
    if prefix is not None:
        inputs.check_id(prefix, "prefix")
    limit = inputs.limit(request)

    def page(state: ClusterState) -> tuple[list[ObjectRecord], str | None]:
        require_machine(state, machine)
        return state.list_objects(machine, state=state_filter, after=after, limit=limit, prefix=prefix)

    (records, next_id), headers = await read_state(request, page)
    return json_response({"objects": [r.to_json() for r in records], "next": next_id}, headers=headers)


async def object_history(request: web.Request) -> web.Response:
    machine, oid = object_path(request)
    limit = inputs.limit(request)

    def history(state: ClusterState) -> list[dict[str, object]]:
        require_object(state, machine, oid)
        return state.history(machine, oid, limit)

    events, headers = await read_state(request, history)
    return json_response({"events": events}, headers=headers)


async def delete_object(request: web.Request) -> web.Response:
    machine, oid = object_path(request)
    return await propose(request, DeleteObject(machine, oid))


OBJECT = "/v1/machines/{machine}/objects/{id}"
ROUTES = [
    Route("GET", OBJECT, get_object, "Get an object (ETag: its version)", "objects",
          {200: "Object", **READ_ERRORS}, params=(CONSISTENCY,)),
    Route("GET", "/v1/machines/{machine}/objects", list_objects, "List objects by id", "objects",
          {200: "ObjectList", **READ_ERRORS},
          params=(Param("state", "query", "only objects in this state"),
                  Param("after", "query", "resume after this id (the previous page's next)"),
                  Param("prefix", "query", "only ids that start with this"),
                  LIMIT, CONSISTENCY)),
    Route("GET", OBJECT + "/history", object_history, "An object's events, newest first", "objects",
          {200: "History", **READ_ERRORS}, params=(LIMIT, CONSISTENCY)),
    Route("DELETE", OBJECT, delete_object, "Remove an object (administrative)", "objects",
          {200: "Deleted", **WRITE_ERRORS}, params=(TIMEOUT,)),
]
