"""Batches (SPEC 4.6): many transitions committed as one log entry.

Over `--max-batch-operations` operations is `413 payload_too_large` (a size
limit like the body and data limits). A malformed operation refuses the whole
batch with `400 invalid_request`, its position in `details`.

A batch's operations are read in one loop (`operations`) that accepts the common
operation with a few direct checks; anything it does not accept outright goes
through `operation`, which decides, and words any refusal, as it always did.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from cluster.config import Settings
from cluster.core.entries import Batch, Transition
from cluster.core.limits import value_problem

from .. import inputs
from ..context import settings_of
from ..errors import ApiError
from ..responses import propose
from .table import IDEMPOTENCY_KEY, PRIORITY, TIMEOUT, WRITE_ERRORS, Route

OPERATION_FIELDS = {"machine", "id", "transition", "data", "expected_version"}
_KNOWN_NAMES: set[str] = set()  # machine and transition names seen valid (a batch repeats them)
_KNOWN_NAMES_CAP = 4096


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
    out = []
    max_data = settings.max_data_bytes
    for position, raw in enumerate(raw_ops):
        fast = _accepted(raw, max_data)
        out.append(fast if fast is not None else operation(position, raw, settings))
    return tuple(out)


def _accepted(raw: Any, max_data: int) -> Transition | None:
    """`raw` as a Transition when it plainly passes every check of `operation`, else None.

    Only ever says yes where `operation` would return the same Transition; every
    doubt (other classes, odd ids, big or deep data) is left to `operation`.
    """
    if raw.__class__ is not dict or not raw.keys() <= OPERATION_FIELDS:
        return None
    machine, id_, transition = raw.get("machine"), raw.get("id"), raw.get("transition")
    if machine.__class__ is not str or id_.__class__ is not str or transition.__class__ is not str:
        return None
    if not (_known_name(machine) and _known_name(transition) and inputs.valid_id(id_)):
        return None
    data, version = raw.get("data"), raw.get("expected_version")
    if data is not None and (data.__class__ is not dict or value_problem(data) is not None
                             or len(orjson.dumps(data)) > max_data):
        return None
    if version is not None and (version.__class__ is not int
                                or not 0 <= version <= inputs.MAX_VERSION):
        return None
    return Transition(machine, id_, transition, data, version)


def _known_name(name: str) -> bool:
    if name in _KNOWN_NAMES:
        return True
    if not inputs.valid_id(name):
        return False
    if len(_KNOWN_NAMES) >= _KNOWN_NAMES_CAP:
        _KNOWN_NAMES.clear()
    _KNOWN_NAMES.add(name)
    return True


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
          params=(TIMEOUT, IDEMPOTENCY_KEY, PRIORITY)),
]
