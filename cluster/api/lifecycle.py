"""A request's life on a node: its request id, in-flight counting, and draining on SIGTERM.

`lifecycle_middleware` (outermost) gives every request an id (`X-Request-Id`, see
cluster/logs.py), counts it while it runs, and logs it: every request with
`--access-log`, else only 5xx answers. When the node drains (SIGTERM), `/readyz`
answers 503 at once and every new request but `/healthz`, `/readyz` and
`/metrics` gets `503 unavailable` with `Retry-After` and `Connection: close`, so
clients and load balancers move to another node; requests already running
finish (bounded by --shutdown-timeout); event-feed streams are not waited for (the
feed ends them when the server stops).
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from cluster.logs import REQUEST_ID, request_id_from

from .errors import ApiError, error_response

log = logging.getLogger("fsmcluster.access")
ALWAYS_SERVED = ("/healthz", "/readyz", "/metrics")
STREAMS = ("/v1/events",)  # long-lived: not waited for (the feed ends its streams on shutdown)


class Lifecycle:
    def __init__(self, access_log: bool = False) -> None:
        self.draining = False
        self.in_flight = 0
        self.access_log = access_log
        self._idle = asyncio.Event()
        self._idle.set()

    def drain(self) -> None:
        self.draining = True

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is running (True), or `timeout` passed (False)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def middleware(self) -> web.middleware:  # type: ignore[valid-type]
        @web.middleware
        async def lifecycle_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            rid = request_id_from(request.headers.get("X-Request-Id"))
            token = REQUEST_ID.set(rid)
            started = time.perf_counter()
            counted = request.path not in STREAMS
            if counted:
                self.in_flight += 1
                self._idle.clear()
            try:
                if self.draining and request.path not in ALWAYS_SERVED:
                    response: web.StreamResponse = error_response(ApiError(
                        "unavailable", "this node is shutting down; use another node",
                        headers={"Retry-After": "1", "Connection": "close"}))
                else:
                    response = await handler(request)
                response.headers["X-Request-Id"] = rid
                self._log(request, response.status, started)
                return response
            finally:
                if counted:
                    self.in_flight -= 1
                    if self.in_flight == 0:
                        self._idle.set()
                REQUEST_ID.reset(token)

        return lifecycle_middleware

    def _log(self, request: web.Request, status: int, started: float) -> None:
        if self.access_log or (status >= 500 and request.path not in ALWAYS_SERVED):
            log.log(logging.INFO if status < 500 else logging.WARNING, "%s %s %d", request.method,
                    request.path, status, extra={"method": request.method, "path": request.path,
                                                 "status": status,
                                                 "ms": round((time.perf_counter() - started) * 1000, 2)})
