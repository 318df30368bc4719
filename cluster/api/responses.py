"""Turning outcomes and reads into HTTP responses (orjson bodies, ETag, Raft index headers)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import orjson
from aiohttp import web

from cluster.core.entries import Batch, Command
from cluster.core.event import json_default
from cluster.core.outcome import Outcome
from cluster.core.state import ClusterState

from . import inputs
from .auth import principal_of
from .context import admission_of, node_of, settings_of
from .errors import OUTCOME_STATUS, ApiError, error_body, outcome_status

T = TypeVar("T")


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body, default=json_default),  # Event structs as their dicts
        status=status, content_type="application/json", headers=headers,
    )


def etag_headers(body: Mapping[str, Any]) -> dict[str, str]:
    obj = body.get("object")
    if isinstance(obj, dict) and isinstance(obj.get("version"), int):
        return {"ETag": f'"{obj["version"]}"'}
    return {}


def outcome_response(outcome: Outcome, minimal: bool = False) -> web.Response:
    """The answer to a write; `minimal` (`Prefer: return=minimal`): each object as its
    summary (`ObjectRecord.summary_json`), said in `Preference-Applied`."""
    status = outcome_status(outcome)
    minimal = minimal and (bool(outcome.results) or outcome.record is not None)
    applied = {"Preference-Applied": "return=minimal"} if minimal else {}
    if outcome.results:
        body: dict[str, Any] = {"results": [batch_result(r, minimal) for r in outcome.results]}
        if outcome.error is not None:
            body.update(error_body(outcome.error.code, outcome.error.message, outcome.error.details))
        return json_response(body, status, applied)
    if outcome.error is not None:
        # the engine's 429 (the Idempotency-Key table is full for its window): retry later
        retry = {"Retry-After": "1"} if outcome.error.code == "overloaded" else None
        return json_response(outcome.error.as_json(), status, retry)
    body = outcome.rendered(minimal)  # rendered here, on the node that answers (outcome.py)
    return json_response(body, status, {**etag_headers(body), **applied})


def batch_result(outcome: Outcome, minimal: bool = False) -> dict[str, Any]:
    """One operation's answer, as SPEC 4.6 has it: `{"status", "object"}` or `{"status",
    "error"}`. Not its event (the feed has it): that was 40 % of a batch's answer."""
    if outcome.error is not None:
        return {"status": outcome_status(outcome), **outcome.error.as_json()}
    result: dict[str, Any] = {"status": OUTCOME_STATUS.get(outcome.status, 200)}
    record = outcome.record
    if record is not None:
        result["object"] = record.summary_json() if minimal else record.to_json()
    return result


async def propose(
    request: web.Request, command: Command, *, idempotency_key: str | None = None
) -> web.Response:
    """Commit `command` through Raft and answer with its outcome."""
    node = node_of(request)
    timeout = inputs.timeout(request, settings_of(request))
    machines, cost = touched(command)
    admission = admission_of(request)
    lane = admission.lane_of(request, machines)
    with admission.permit(lane, cost):
        outcome = await node.propose(
            command,
            timeout=timeout,
            idempotency_key=idempotency_key,
            principal=principal_of(request),
            priority=lane,
        )
    return outcome_response(outcome, inputs.prefers_minimal(request))


def touched(command: Command) -> tuple[tuple[str, ...], int]:
    """The machines a command names, and its admission cost (a batch: its operations)."""
    if isinstance(command, Batch):
        return tuple(op.machine for op in command.operations), len(command.operations)
    machine = getattr(command, "machine", None)
    return ((machine,) if isinstance(machine, str) else ()), 1


async def read_state(request: web.Request, fn: Callable[[ClusterState], T]) -> tuple[T, dict[str, str]]:
    """Run `fn` on the state once it is current (or at once with consistency=stale).

    Returns its result and the Raft index headers describing how current it was.
    """
    node = node_of(request)
    mode = inputs.consistency(request)
    if mode == "linearizable":
        admission = admission_of(request)
        machine = request.match_info.get("machine")
        with admission.permit(admission.lane_of(request, (machine,) if machine else ())):
            await node.confirm_current(settings_of(request).read_timeout)
    try:
        result = node.read(fn)
    except ApiError as exc:  # e.g. object_not_found: still say how current the answer was
        exc.headers.update(index_headers(request, mode))
        raise
    return result, index_headers(request, mode)


def index_headers(request: web.Request, mode: str) -> dict[str, str]:
    node = node_of(request)
    applied = node.applied_index
    headers = {
        "X-Raft-Applied-Index": str(applied),
        "X-Raft-Commit-Index": str(node.commit_index),
        "X-Consistency": mode,
    }
    if mode == "stale":
        status = node.status()
        known = max(node.commit_index, status.leader_commit_index or 0)
        headers["X-Raft-Lag"] = str(max(0, known - applied))
    return headers


def found(value: T | None, code: str, message: str) -> T:
    if value is None:
        raise ApiError(code, message)
    return value
