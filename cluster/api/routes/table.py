"""What a route is: method, path, handler and the shapes it takes and returns, and the
parameters and error sets many routes share. The resource modules declare their routes
with these; `routes.all_routes()` collects them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    where: str  # "query" | "header"
    description: str
    schema: Mapping[str, object] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    responses: Mapping[int, str | None]  # status -> component schema name (None: no JSON body)
    request: str | None = None  # component schema name of the JSON body
    request_types: tuple[str, ...] = ("application/json",)
    params: tuple[Param, ...] = ()
    response_type: str = "application/json"


TIMEOUT = Param("timeout", "query", "how long to wait for the commit, e.g. 500ms, 5s (default 5s)")
IDEMPOTENCY_KEY = Param(
    "Idempotency-Key", "header", "retrying with the same key applies the change at most once"
)
CONSISTENCY = Param(
    "consistency",
    "query",
    "linearizable (default) or stale (local read; see X-Raft-Applied-Index)",
    {"type": "string", "enum": ["linearizable", "stale"]},
)
PREFER = Param(
    "Prefer",
    "header",
    "return=minimal: each object in the answer is its summary (machine, id, state, version, "
    "index), said back in Preference-Applied (RFC 7240)",
)
PRIORITY = Param(
    "X-Priority",
    "header",
    "admission lane: high is admitted and proposed ahead of normal (default: the machine's "
    "`priority:`, else normal)",
    {"type": "string", "enum": ["high", "normal"]},
)
LIMIT = Param("limit", "query", "at most this many items (1-1000)", {"type": "integer"})
WRITE_ERRORS: Mapping[int, str | None] = {
    400: "Error", 404: "Error", 409: "Error", 412: "Error", 413: "Error", 422: "Error",
    429: "Error", 503: "Error", 504: "Error",
}
READ_ERRORS: Mapping[int, str | None] = {400: "Error", 404: "Error", 429: "Error", 503: "Error"}
