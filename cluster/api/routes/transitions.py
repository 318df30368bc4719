"""Transitions (SPEC 4.3): create or move an object, with optimistic concurrency
(`expected_version` / `If-Match`) and idempotent retries (`Idempotency-Key`)."""

from __future__ import annotations

from aiohttp import web

from cluster.core.entries import Transition

from .. import inputs
from ..context import settings_of
from ..responses import propose
from .table import IDEMPOTENCY_KEY, PREFER, PRIORITY, TIMEOUT, WRITE_ERRORS, Param, Route


async def apply_transition(request: web.Request) -> web.Response:
    machine = inputs.path_id(request, "machine", "machine name")
    oid = inputs.path_id(request, "id")
    name = inputs.path_id(request, "transition", "transition name")
    settings = settings_of(request)
    body = await inputs.read_json(request, settings, required=False)
    inputs.check_fields(body, {"data", "expected_version"})
    command = Transition(
        machine=machine,
        id=oid,
        transition=name,
        data=inputs.optional_data(body, settings),
        expected_version=inputs.expected_version(request, body),
    )
    return await propose(request, command, idempotency_key=inputs.idempotency_key(request))


ROUTES = [
    Route("POST", "/v1/machines/{machine}/objects/{id}/transitions/{transition}", apply_transition,
          "Apply a transition (creates the object when it starts from null)", "transitions",
          {200: "TransitionResult", 201: "TransitionResult", 202: "PendingResult", **WRITE_ERRORS},
          request="TransitionRequest",
          params=(TIMEOUT, IDEMPOTENCY_KEY, PRIORITY, PREFER,
                  Param("If-Match", "header", 'expected object version, e.g. "3"'))),
]
