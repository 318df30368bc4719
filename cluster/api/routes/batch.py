"""Batches (SPEC 4.6): many transitions committed as one log entry.

Over `--max-batch-operations` operations is `413 payload_too_large` (a size
limit like the body and data limits). A malformed operation refuses the whole
batch with `400 invalid_request`, its position in `details`.

The node that takes the request checks every operation: per operation in Python, this
was ~4 % of its CPU under batches of 100. msgspec checks the operations' shape in C
(`_Operation`: fields, types, versions), one regex call all their ids
(`inputs.all_valid_ids`), and Python only their data's limits. A batch refused by any of
these is checked again operation by operation (`operation`), which words the refusal of
the first bad one as it always has. 100 `put`s of 64-character values: ~228 → ~96 µs
(medians of six alternating pairs); `tests/unit/test_batch_operations.py` compares
both paths on hypothesis operation lists.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from cluster.config import Settings
from cluster.core.entries import Batch, Transition

from .. import inputs
from ..context import settings_of
from ..errors import ApiError
from ..responses import propose
from .table import IDEMPOTENCY_KEY, PREFER, PRIORITY, TIMEOUT, WRITE_ERRORS, Route

_Version = Annotated[int, msgspec.Meta(ge=0, le=inputs.MAX_VERSION)]  # strict: no bools, no floats


class _Operation(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """An operation `operation` accepts, but for its data's limits (`inputs.checked_data`)."""

    machine: str  # ids: `inputs.all_valid_ids`, one regex call for the batch
    id: str
    transition: str
    data: Any = None  # taken as it is: the checks and the Transition keep the request's dict
    expected_version: _Version | None = None


OPERATION_FIELDS = set(_Operation.__struct_fields__)  # what `operation` allows, too


async def post_batch(request: web.Request) -> web.Response:
    settings = settings_of(request)
    body = await inputs.read_json(request, settings)
    inputs.check_fields(body, {"atomic", "operations"})
    atomic = body.get("atomic", False)
    if not isinstance(atomic, bool):
        raise ApiError("invalid_request", "'atomic' must be true or false")
    raw_ops = body.get("operations")
    if not isinstance(raw_ops, list) or not raw_ops:
        raise ApiError("invalid_request", "'operations' must be a non-empty array of operations")
    if len(raw_ops) > settings.max_batch_operations:
        raise ApiError(
            "payload_too_large",
            f"a batch holds at most {settings.max_batch_operations} operations, got {len(raw_ops)}",
        )
    return await propose(
        request, Batch(operations(raw_ops, settings), atomic), idempotency_key=inputs.idempotency_key(request)
    )


def operations(raw_ops: list[Any], settings: Settings) -> tuple[Transition, ...]:
    """The batch's transitions; the first operation `operation` refuses refuses the batch."""
    transitions = _well_formed(raw_ops, settings)
    if transitions is None:
        transitions = tuple(operation(position, raw, settings) for position, raw in enumerate(raw_ops))
    return transitions


def _well_formed(raw_ops: list[Any], settings: Settings) -> tuple[Transition, ...] | None:
    """The transitions when every operation is well-formed, else None (`operation` words why)."""
    try:
        ops = msgspec.convert(raw_ops, list[_Operation])
        if not inputs.all_valid_ids([name for op in ops for name in (op.machine, op.id, op.transition)]):
            return None
        return tuple([Transition(op.machine, op.id, op.transition, inputs.checked_data(op.data, settings),
                                 op.expected_version) for op in ops])
    except (msgspec.ValidationError, ApiError):
        return None


def operation(position: int, raw: Any, settings: Settings) -> Transition:
    try:
        if not isinstance(raw, dict):
            raise ApiError("invalid_request", f"must be an object, not {inputs.json_type(raw)}")
        inputs.check_fields(raw, OPERATION_FIELDS, "operation")
        for key in ("machine", "id", "transition"):
            if not isinstance(raw.get(key), str):
                raise ApiError("invalid_request", f"'{key}' is required and must be a string")
        return Transition(
            machine=inputs.check_id(raw["machine"], "machine"),
            id=inputs.check_id(raw["id"], "id"),
            transition=inputs.check_id(raw["transition"], "transition"),
            data=inputs.optional_data(raw, settings),
            expected_version=inputs.optional_version(raw.get("expected_version"), "expected_version"),
        )
    except ApiError as exc:
        raise ApiError(
            exc.code,
            f"operation {position}: {exc.message}",
            [{"operation": position, "message": exc.message}],
        ) from None


ROUTES = [
    Route("POST", "/v1/batch", post_batch, "Apply many transitions in one log entry", "batch",
          {200: "BatchResult", **WRITE_ERRORS}, request="BatchRequest",
          params=(TIMEOUT, IDEMPOTENCY_KEY, PRIORITY, PREFER)),
]
