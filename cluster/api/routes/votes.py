"""Votes (SPEC 4.4): approve or reject a pending change; withdraw it."""

from __future__ import annotations

from aiohttp import web

from cluster.core.entries import Vote, Withdraw

from .. import inputs
from ..context import settings_of
from ..errors import ApiError
from ..responses import propose
from .table import IDEMPOTENCY_KEY, PREFER, TIMEOUT, WRITE_ERRORS, Route


async def put_vote(request: web.Request) -> web.Response:
    machine = inputs.path_id(request, "machine", "machine name")
    oid = inputs.path_id(request, "id")
    voter = inputs.path_id(request, "voter", "voter")
    body = await inputs.read_json(request, settings_of(request))
    inputs.check_fields(body, {"approve", "change"})
    approve = body.get("approve")
    change = body.get("change")
    if not isinstance(approve, bool):
        raise ApiError("invalid_request", "'approve' is required and must be true or false")
    if not isinstance(change, str) or not change:
        raise ApiError(
            "invalid_request", "'change' is required: the id of the pending change you vote on"
        )
    return await propose(
        request, Vote(machine, oid, voter, approve, change),
        idempotency_key=inputs.idempotency_key(request),
    )


async def withdraw(request: web.Request) -> web.Response:
    machine = inputs.path_id(request, "machine", "machine name")
    oid = inputs.path_id(request, "id")
    return await propose(request, Withdraw(machine, oid))


OBJECT = "/v1/machines/{machine}/objects/{id}"
ROUTES = [
    Route("PUT", OBJECT + "/votes/{voter}", put_vote, "Vote on the pending change", "votes",
          {200: "VoteResult", 403: "Error", **WRITE_ERRORS}, request="VoteRequest",
          params=(TIMEOUT, IDEMPOTENCY_KEY, PREFER)),
    Route("DELETE", OBJECT + "/pending", withdraw, "Withdraw the pending change", "votes",
          {200: "ObjectResult", **WRITE_ERRORS}, params=(TIMEOUT, PREFER)),
]
