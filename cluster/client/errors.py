"""Typed errors of the fsmcluster client, built from the JSON error body of SPEC 4.9.

One root, `FsmError(code, message, details, status)`; one subclass per family of
codes (404s are `NotFound`, 409s are `Conflict`, ...) and a few per code where a
caller branches on it (`VersionConflict`, `GuardFailed`, `TransitionNotAllowed`).
`error_from_response` is the one table from a response to an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

__all__ = [
    "Conflict", "FsmError", "Forbidden", "GuardFailed", "Gone", "IdempotencyKeyReused",
    "InvalidRequest", "InvalidSchema", "LockHeld", "LockLost", "MachineInUse", "MachineNotFound",
    "NotAVoter", "NotFound", "ObjectExists", "ObjectNotFound", "Overloaded", "PayloadTooLarge",
    "PendingChange", "ServerError", "StaleChange", "TerminalState", "Timeout",
    "TransitionNotAllowed", "TransitionNotFound", "Unauthorized", "Unavailable",
    "VersionConflict", "VoteConflict", "error_from_body",
]


class FsmError(Exception):
    """Root of every error the client raises. `status` is None when no node answered."""

    def __init__(
        self,
        code: str,
        message: str,
        details: Sequence[Mapping[str, Any]] = (),
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details: list[dict[str, Any]] = [dict(d) for d in details]
        self.status = status
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, status={self.status})"


class InvalidRequest(FsmError):
    """400: the request itself is wrong (bad JSON, bad id, unknown field)."""


class InvalidSchema(InvalidRequest):
    """400: a machine definition with problems; `details` has path, line, column, message."""


class Unauthorized(FsmError):
    """401: no or unknown bearer token."""


class Forbidden(FsmError):
    """403: the principal may not do this."""


class NotAVoter(Forbidden):
    """403: the voter is not in the pending change's voter list."""


class NotFound(FsmError):
    """404: machine, object, transition, task or route does not exist."""


class MachineNotFound(NotFound):
    pass


class ObjectNotFound(NotFound):
    pass


class TransitionNotFound(NotFound):
    pass


class Conflict(FsmError):
    """409: the object's current state does not allow the request."""


class TransitionNotAllowed(Conflict):
    """409: `details[0]` names the current `state` and the `allowed` transitions."""

    @property
    def state(self) -> str | None:
        return self.details[0].get("state") if self.details else None


class ObjectExists(Conflict):
    pass


class PendingChange(Conflict):
    """409: another change is waiting for votes on this object."""


class TerminalState(Conflict):
    pass


class VoteConflict(Conflict):
    pass


class StaleChange(Conflict):
    pass


class MachineInUse(Conflict):
    pass


class Gone(FsmError):
    """410: the event feed no longer holds the requested index."""


class VersionConflict(FsmError):
    """412: `expected_version` did not match; `expected` and `actual` say how."""

    @property
    def expected(self) -> int | None:
        return self.details[0].get("expected") if self.details else None

    @property
    def actual(self) -> int | None:
        return self.details[0].get("actual") if self.details else None


class PayloadTooLarge(FsmError):
    pass


class GuardFailed(FsmError):
    """422: a condition refused the data; one detail per failed rule (path, rule, message)."""


class IdempotencyKeyReused(FsmError):
    """422: the Idempotency-Key was used before with a different request."""


class Overloaded(FsmError):
    """429: the node sheds load; retry after `retry_after` seconds."""


class ServerError(FsmError):
    """5xx other than 503/504: a bug or crash on the node."""


class Unavailable(FsmError):
    """503 or no node reachable: the request was certainly not applied."""


class Timeout(FsmError):
    """504 or no answer in time: a write may or may not have applied.

    Retrying with the same Idempotency-Key applies it at most once.
    """


class LockLost(Conflict):
    """The lock is no longer held by this owner (expired, taken over or released)."""


class LockHeld(Conflict):
    """`acquire` found the lock held by another owner and did not (or could no longer) wait."""


CLASS_BY_CODE: dict[str, type[FsmError]] = {
    "invalid_request": InvalidRequest,
    "invalid_id": InvalidRequest,
    "invalid_schema": InvalidSchema,
    "unauthorized": Unauthorized,
    "forbidden": Forbidden,
    "not_a_voter": NotAVoter,
    "machine_not_found": MachineNotFound,
    "object_not_found": ObjectNotFound,
    "transition_not_found": TransitionNotFound,
    "not_found": NotFound,
    "transition_not_allowed": TransitionNotAllowed,
    "object_exists": ObjectExists,
    "pending_change": PendingChange,
    "terminal_state": TerminalState,
    "vote_conflict": VoteConflict,
    "stale_change": StaleChange,
    "machine_in_use": MachineInUse,
    "gone": Gone,
    "version_conflict": VersionConflict,
    "payload_too_large": PayloadTooLarge,
    "guard_failed": GuardFailed,
    "idempotency_key_reused": IdempotencyKeyReused,
    "overloaded": Overloaded,
    "unavailable": Unavailable,
    "timeout": Timeout,
}

CLASS_BY_STATUS: dict[int, type[FsmError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    412: VersionConflict,
    413: PayloadTooLarge,
    422: GuardFailed,
    429: Overloaded,
    503: Unavailable,
    504: Timeout,
}


def error_class(code: str, status: int | None) -> type[FsmError]:
    """The most specific class for a code; an unknown code falls back to its status family."""
    if code in CLASS_BY_CODE:
        return CLASS_BY_CODE[code]
    if status is not None and status in CLASS_BY_STATUS:
        return CLASS_BY_STATUS[status]
    if status is not None and status >= 500:
        return ServerError
    return FsmError


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (the delta-seconds form; an HTTP date is ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def error_from_body(
    status: int, body: bytes, retry_after: float | None = None
) -> FsmError:
    """The typed error for an HTTP error response; a body that is not SPEC 4.9 JSON
    (a proxy's HTML page, a truncated answer) still gives an error named by its status."""
    code, message, details = f"http_{status}", "", []
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        code = error["code"]
        message = str(error.get("message", ""))
        raw = error.get("details") or []
        details = [d if isinstance(d, dict) else {"message": str(d)} for d in raw] if isinstance(raw, list) else []
    else:
        text = body.decode("utf-8", "replace").strip()
        message = text[:200] if text else f"HTTP {status} without an error body"
    return error_class(code, status)(code, message, details, status, retry_after)
