"""The one table from error codes to HTTP statuses, and the JSON error body (SPEC 4.9).

Every error the API answers has the body
`{"error": {"code", "message", "details": [...]}}`. Engine rejections arrive as
`Rejection` values; failures found by the HTTP layer itself are raised as
`ApiError` and turned into the same body by the error middleware.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from aiohttp import web

from cluster.core.outcome import Outcome, Rejection

STATUS_BY_CODE: dict[str, int] = {
    "invalid_request": 400,
    "invalid_schema": 400,
    "invalid_id": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_a_voter": 403,
    "machine_not_found": 404,
    "object_not_found": 404,
    "transition_not_found": 404,
    "task_not_found": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "transition_not_allowed": 409,
    "object_exists": 409,
    "pending_change": 409,
    "no_pending_change": 409,
    "terminal_state": 409,
    "vote_conflict": 409,
    "stale_change": 409,
    "machine_in_use": 409,
    "aborted": 409,
    "change_in_progress": 409,  # a membership change is unfinished
    "unsafe_change": 409,  # a membership change that would leave no reachable majority  # an operation of an atomic batch not applied because another failed
    "gone": 410,
    "version_conflict": 412,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "guard_failed": 422,
    "idempotency_key_reused": 422,
    "overloaded": 429,
    "internal": 500,
    "unavailable": 503,
    "timeout": 504,
}

OUTCOME_STATUS: dict[str, int] = {"created": 201, "applied": 200, "pending": 202, "ok": 200}


def status_for(code: str) -> int:
    """HTTP status of an error code; an unknown code is a server bug, hence 500."""
    return STATUS_BY_CODE.get(code, 500)


def outcome_status(outcome: Outcome) -> int:
    if outcome.error is not None:
        return status_for(outcome.error.code)
    return OUTCOME_STATUS.get(outcome.status, 200)


class ApiError(Exception):
    """A request the HTTP layer refuses before (or instead of) proposing anything."""

    def __init__(
        self,
        code: str,
        message: str,
        details: Iterable[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = [dict(d) for d in details]
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return status_for(self.code)

    @staticmethod
    def from_rejection(rejection: Rejection) -> ApiError:
        return ApiError(rejection.code, rejection.message, rejection.details)


def error_body(code: str, message: str, details: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": [dict(d) for d in details]}}


def error_response(error: ApiError) -> web.Response:
    headers = dict(error.headers)
    if error.code in ("unavailable", "overloaded"):
        headers.setdefault("Retry-After", "1")
    return web.Response(
        body=orjson.dumps(error_body(error.code, error.message, error.details)),
        status=error.status,
        content_type="application/json",
        headers=headers,
    )
