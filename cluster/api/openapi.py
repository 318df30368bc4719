"""The OpenAPI 3 description of the API, generated from the route table.

Only shapes live here; which paths exist, their methods, parameters and
statuses come from the route table `build_app` registers and passes in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .routes.table import Route

_OBJ: dict[str, Any] = {"type": "object"}
_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer"}
# fields that are null until there is something to say (OpenAPI 3.0 spelling)
_NSTR: dict[str, Any] = {"type": "string", "nullable": True}
_NINT: dict[str, Any] = {"type": "integer", "nullable": True}
_NOBJ: dict[str, Any] = {"type": "object", "nullable": True}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str] | None = None, **props: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


SCHEMAS: dict[str, Any] = {
    "Error": _obj(["error"], error=_obj(["code", "message", "details"], code=_STR, message=_STR,
                                        details={"type": "array", "items": _OBJ})),
    "MachineDefinition": {"type": "string", "description": "YAML or JSON text (SPEC section 3)"},
    "MachineSummary": _obj(name=_STR, revision=_STR, changed={"type": "boolean"},
                           states={"type": "array", "items": _STR},
                           transitions={"type": "array", "items": _STR}),
    "MachineList": _obj(machines={"type": "array", "items": _obj(name=_STR, revision=_STR, objects=_INT)}),
    "Machine": _obj(name=_STR, revision=_STR, definition=_OBJ, source=_STR,
                    revisions={"type": "array", "items": _obj(revision=_STR, objects=_INT,
                                                              current={"type": "boolean"})}),
    "Object": _obj(machine=_STR, id=_STR, revision=_STR, state=_STR, previous_state=_NSTR, data=_OBJ,
                   version=_INT, generation=_INT, pending=_NOBJ, tasks={"type": "array", "items": _OBJ},
                   created_at=_STR, updated_at=_STR, expires_at=_NSTR, index=_INT),
    "ObjectList": _obj(objects={"type": "array", "items": _ref("Object")}, next=_NSTR),
    "History": _obj(events={"type": "array", "items": _OBJ}),
    "ClusterNodes": _obj(node=_OBJ, nodes={"type": "array", "items": _obj(
        raft=_STR, http=_NSTR, ok={"type": "boolean"}, status=_ref("ClusterStatus"), error=_STR)}),
    "StateCounts": _obj(machine=_STR, revision=_STR, objects=_INT,
                        states={"type": "object", "additionalProperties": _INT}),
    "Deleted": _obj(deleted={"type": "boolean"}, object=_ref("Object"), name=_STR),
    "TransitionRequest": _obj(data=_OBJ, expected_version=_INT),
    "TransitionResult": _obj(object=_ref("Object"), event=_OBJ),
    "PendingResult": _obj(object=_ref("Object"), pending=_OBJ),
    "ObjectResult": _obj(object=_ref("Object")),
    "VoteRequest": _obj(["approve", "change"], approve={"type": "boolean"}, change=_STR),
    "VoteResult": _obj(object=_ref("Object"), outcome={"type": "string",
                                                      "enum": ["applied", "rejected", "pending"]}),
    "TaskList": _obj(tasks={"type": "array", "items": _OBJ}),
    "Event": _obj(["index", "machine", "object", "kind", "at"], index=_INT, machine=_STR,
                  object=_STR, kind=_STR, transition=_STR, version=_INT, at=_STR),
    "EventPage": _obj(["events", "next"], events={"type": "array", "items": _ref("Event")},
                      next=_INT),
    "TaskReport": _obj(["status"], status={"type": "string", "enum": ["completed", "failed"]},
                       error=_STR, data=_OBJ),
    "TaskRetry": _obj(status={"type": "string", "enum": ["failed", "pending"]}),
    "BatchRequest": _obj(["operations"], atomic={"type": "boolean"}, operations={
        "type": "array", "maxItems": 1000,
        "items": _obj(["machine", "id", "transition"], machine=_STR, id=_STR, transition=_STR,
                      data=_OBJ, expected_version=_INT)}),
    "BatchResult": _obj(results={"type": "array", "items": _obj(status=_INT, object=_ref("Object"),
                                                                error=_OBJ)}),
    "Member": _obj(["raft"], raft=_STR, http=_STR),
    "Snapshot": _obj(store=_STR, last_index=_NINT, last_at=_NSTR, size=_NINT, ok={"type": "boolean"},
                     error=_NSTR),
    "ClusterStatus": _obj(node=_OBJ, leader=_OBJ, term=_INT, commit_index=_INT, applied_index=_INT,
                          ready={"type": "boolean"}, members={"type": "array", "items": _OBJ},
                          snapshot=_ref("Snapshot"), projection=_OBJ, read_lease=_OBJ),
    "Health": _obj(status=_STR),
    "Ready": _obj(ready={"type": "boolean"}, reason=_STR, leader=_STR, term=_INT),
}

STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted (pending votes)", 400: "Bad request",
               403: "Forbidden", 404: "Not found", 409: "Conflict", 412: "Version conflict",
               413: "Payload too large", 422: "Unprocessable", 503: "Unavailable (Retry-After)",
               504: "Timeout: outcome unknown"}


def operation(route: Route) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": _STR}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    params += [{"name": p.name, "in": p.where, "required": False, "description": p.description,
                "schema": dict(p.schema)} for p in route.params]
    responses: dict[str, Any] = {}
    for status, schema in sorted(route.responses.items()):
        response: dict[str, Any] = {"description": STATUS_TEXT.get(status, str(status))}
        media = "application/json" if schema is not None or status >= 400 else route.response_type
        response["content"] = {media: {"schema": _ref(schema) if schema else _STR}}
        responses[str(status)] = response
    op: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": params,
        "responses": responses,
    }
    if route.request is not None:
        op["requestBody"] = {
            "required": route.request not in ("TransitionRequest", "TaskRetry"),
            "content": {t: {"schema": _ref(route.request)} for t in route.request_types},
        }
    return op


def build_openapi(routes: Sequence[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(route)
    return {
        "openapi": "3.0.3",
        "info": {"title": "fsmcluster", "version": "1",
                 "description": "Replicated, strongly consistent store of state-machine objects"},
        "paths": paths,
        "components": {"schemas": SCHEMAS},
    }
