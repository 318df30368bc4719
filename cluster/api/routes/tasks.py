"""Tasks (SPEC 4.5): list tasks for workers, report a task's result, retry tasks."""

from __future__ import annotations

from aiohttp import web

from cluster.core.entries import RetryTasks, TaskReport
from cluster.core.limits import MAX_ERROR_CHARS

from .. import inputs
from ..context import settings_of
from ..errors import ApiError
from ..responses import json_response, propose, read_state
from .table import (
    CONSISTENCY,
    IDEMPOTENCY_KEY,
    LIMIT,
    PREFER,
    READ_ERRORS,
    TIMEOUT,
    WRITE_ERRORS,
    Param,
    Route,
)

TASK_STATUSES = ("pending", "completed", "failed")


async def list_tasks(request: web.Request) -> web.Response:
    status = inputs.choice(request, "status", TASK_STATUSES, None)
    machine = request.query.get("machine") or None
    if machine is not None:
        inputs.check_id(machine, "machine")
    limit = inputs.limit(request)
    tasks, headers = await read_state(
        request, lambda s: s.tasks(status=status, machine=machine, limit=limit)
    )
    return json_response({"tasks": tasks}, headers=headers)


async def report_task(request: web.Request) -> web.Response:
    machine = inputs.path_id(request, "machine", "machine name")
    oid = inputs.path_id(request, "id")
    task = inputs.path_id(request, "task", "task name")
    settings = settings_of(request)
    body = await inputs.read_json(request, settings)
    inputs.check_fields(body, {"status", "error", "data"})
    status = body.get("status")
    if status not in ("completed", "failed"):
        raise ApiError("invalid_request", f"'status' must be 'completed' or 'failed', got {status!r}")
    error = body.get("error")
    if error is not None and not isinstance(error, str):
        raise ApiError("invalid_request", "'error' must be a string")
    if error is not None and len(error) > MAX_ERROR_CHARS:
        raise ApiError(
            "payload_too_large",
            f"'error' is {len(error):,} characters; the limit is {MAX_ERROR_CHARS:,}",
        )
    command = TaskReport(machine, oid, task, status, error, inputs.optional_data(body, settings))
    return await propose(request, command, idempotency_key=inputs.idempotency_key(request))


async def retry_tasks(request: web.Request) -> web.Response:
    machine = inputs.path_id(request, "machine", "machine name")
    oid = inputs.path_id(request, "id")
    body = await inputs.read_json(request, settings_of(request), required=False)
    inputs.check_fields(body, {"status"})
    status = body.get("status", "failed")
    if status not in ("failed", "pending"):
        raise ApiError("invalid_request", f"'status' must be 'failed' or 'pending', got {status!r}")
    return await propose(
        request, RetryTasks(machine, oid, status), idempotency_key=inputs.idempotency_key(request)
    )


OBJECT = "/v1/machines/{machine}/objects/{id}"
ROUTES = [
    Route("GET", "/v1/tasks", list_tasks, "Tasks across objects, for workers", "tasks",
          {200: "TaskList", **READ_ERRORS},
          params=(Param("status", "query", "pending, completed or failed",
                        {"type": "string", "enum": list(TASK_STATUSES)}),
                  Param("machine", "query", "only tasks of this machine"), LIMIT, CONSISTENCY)),
    Route("POST", OBJECT + "/tasks/{task}", report_task, "Report a task completed or failed", "tasks",
          {200: "ObjectResult", **WRITE_ERRORS}, request="TaskReport",
          params=(TIMEOUT, IDEMPOTENCY_KEY, PREFER)),
    Route("POST", OBJECT + "/tasks:retry", retry_tasks, "Re-issue failed or pending tasks", "tasks",
          {200: "ObjectResult", **WRITE_ERRORS}, request="TaskRetry",
          params=(TIMEOUT, IDEMPOTENCY_KEY, PREFER)),
]
