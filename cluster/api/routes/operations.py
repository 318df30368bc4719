"""Operations endpoints: /healthz, /readyz, /metrics, /v1/openapi.json."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cluster.errors import ClusterError

from ..context import LIFECYCLE, METRICS, OPENAPI, node_of
from ..responses import json_response
from .table import Route


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    if request.app[LIFECYCLE].draining:
        return json_response({"ready": False, "reason": "this node is shutting down"}, 503, {"Retry-After": "1"})
    try:
        status = node_of(request).status()
    except ClusterError as exc:
        return json_response({"ready": False, "reason": str(exc)}, 503, {"Retry-After": "1"})
    if getattr(node_of(request), "removed", False):
        return json_response({"ready": False, "reason": "this node was removed from the cluster"}, 503,
                             {"Retry-After": "1"})
    if status.ready():
        return json_response({"ready": True, "leader": status.leader, "term": status.term})
    if status.leader is None:
        reason = "no leader is known"
    elif status.is_leader and not status.has_quorum:
        reason = "this leader cannot reach a quorum"
    elif not status.leader_connected:
        reason = f"not connected to the leader {status.leader}"
    else:
        reason = f"catching up with the log ({status.lag} entries behind)"
    return json_response({"ready": False, "reason": reason}, 503, {"Retry-After": "1"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI])


ROUTES = [
    Route("GET", "/healthz", healthz, "The process is alive", "operations", {200: "Health"}),
    Route("GET", "/readyz", readyz, "Has a leader and is caught up (else 503)", "operations",
          {200: "Ready", 503: "Ready"}),
    Route("GET", "/metrics", metrics, "Prometheus metrics", "operations", {200: None},
          response_type="text/plain"),
    Route("GET", "/v1/openapi.json", openapi, "This API's OpenAPI 3 description", "operations",
          {200: None}),
]
