"""Cluster operations (SPEC 4.8): status, membership changes, snapshot now."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from cluster.config import SettingsError, parse_address
from cluster.core.records import iso_ms
from cluster.errors import Unavailable
from cluster.storage.snapshot_file import SnapshotInfo

from .. import forward, inputs
from ..context import ClusterNode, node_of, settings_of
from ..errors import ApiError
from ..responses import json_response
from .table import TIMEOUT, Route


def cluster_status(node: ClusterNode) -> dict[str, Any]:
    status = node.status()
    snapshot = node.snapshot_info

    http_of, names = node.http_of, node.names()

    def member(raft: str | None) -> dict[str, Any] | None:
        if raft is None:
            return None
        return {"raft": raft, "http": http_of.get(raft)}

    members = [
        {**member(status.node), "name": names.get(status.node, status.node), "connected": True, "match_index": status.applied_index,  # type: ignore[dict-item]
         "self": True, "leader": status.leader == status.node}
    ] + [
        {**member(m.raft), "name": names.get(m.raft, m.raft), "connected": m.connected, "match_index": m.match_index,  # type: ignore[dict-item]
         "self": False, "leader": status.leader == m.raft}
        for m in status.members
    ]
    return {
        "node": member(status.node),
        "leader": member(status.leader),
        "term": status.term,
        "commit_index": node.commit_index,
        "applied_index": node.applied_index,
        "ready": status.ready() and not node.removed,
        "removed": node.removed,
        "has_quorum": status.has_quorum,
        "leader_changes": status.leader_changes,
        "fsync": node.settings.fsync,
        "read_lease": read_lease_body(node, status.term),
        "members": members,
        "snapshot": snapshot_body(snapshot),
        **projection_body(node),
        **events_body(node),
    }


def read_lease_body(node: ClusterNode, term: int) -> dict[str, Any]:
    """`--read-lease`: whether it is on, and (on the leader) how long the lease still holds."""
    lease = getattr(getattr(node, "member", None), "lease", None)
    remaining = lease.remaining(term) if lease is not None else 0.0
    return {"enabled": bool(node.settings.read_lease), "remaining_ms": round(remaining * 1000)}


def snapshot_body(info: SnapshotInfo) -> dict[str, Any]:
    return {"store": info.store, "last_index": info.last_index, "last_at": iso_ms(info.last_at_ms),
            "size": info.size, "ok": info.ok, "error": info.error}


def events_body(node: ClusterNode) -> dict[str, Any]:
    """The event feed's window: resume with `since` >= `floor`; `first`/`last` indexes held."""
    window = getattr(node, "events", None)
    if window is None:
        return {}
    return {"events": {"first_index": window.first_index(), "last_index": window.last,
                       "floor": window.floor, "held": len(window), "capacity": window.capacity}}


def projection_body(node: ClusterNode) -> dict[str, Any]:
    """The Redis read model's progress, when this node runs with --redis-projection."""
    status = getattr(node, "projection_info", None)
    if status is None:
        return {}
    return {"projection": {"ok": status.ok, "last_index": status.last_index, "queued": status.queued,
                           "rebuilds": status.rebuilds, "error": status.error}}


async def get_cluster(request: web.Request) -> web.Response:
    return json_response(cluster_status(node_of(request)))


def raft_address(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ApiError("invalid_request", f"'{what}' must be a HOST:PORT string")
    try:
        parse_address(value, what)
    except SettingsError as exc:
        raise ApiError("invalid_request", str(exc)) from None
    return value


async def add_member(request: web.Request) -> web.Response:
    """On the leader (a follower forwards it there): membership.py says what is refused."""
    body = await inputs.read_json(request, settings_of(request))
    inputs.check_fields(body, {"raft", "http"})
    raft = raft_address(body.get("raft"), "raft")
    http = raft_address(body["http"], "http") if body.get("http") is not None else None
    node, timeout = node_of(request), inputs.timeout(request, settings_of(request))
    leader = await forward.leader_http(node)
    if leader is not None:
        return await forward.to_leader(request, leader, orjson.dumps(body), timeout)
    await node.add_member(raft, http, timeout)
    return json_response(cluster_status(node), 200)


async def remove_member(request: web.Request) -> web.Response:
    """On the leader; removing the leader itself hands leadership over first."""
    raft = raft_address(request.match_info["raft"], "raft")
    node, timeout = node_of(request), inputs.timeout(request, settings_of(request))
    leader = await forward.leader_http(node)
    if leader is None and raft == node.status().node:
        await node.hand_over(min(timeout, 5.0))
        leader = await forward.leader_http(node)
        if leader is None:
            raise Unavailable("the leader could not hand leadership over before removing itself; retry")
    if leader is not None:
        return await forward.to_leader(request, leader, None, timeout)
    await node.remove_member(raft, timeout)
    return json_response(cluster_status(node), 200)


async def take_snapshot(request: web.Request) -> web.Response:
    info = await node_of(request).snapshot_now(inputs.timeout(request, settings_of(request)))
    return json_response(snapshot_body(info), 200 if info.ok else 500)


ROUTES = [
    Route("GET", "/v1/cluster", get_cluster, "This node's view of the cluster", "cluster",
          {200: "ClusterStatus"}),
    Route("POST", "/v1/cluster/members", add_member, "Add a member (through the log)", "cluster",
          {200: "ClusterStatus", 400: "Error", 409: "Error", 503: "Error", 504: "Error"}, request="Member",
          params=(TIMEOUT,)),
    Route("DELETE", "/v1/cluster/members/{raft}", remove_member, "Remove a member", "cluster",
          {200: "ClusterStatus", 400: "Error", 404: "Error", 409: "Error", 503: "Error", 504: "Error"},
          params=(TIMEOUT,)),
    Route("POST", "/v1/cluster/snapshot", take_snapshot, "Take a snapshot now", "cluster",
          {200: "Snapshot", 400: "Error", 503: "Error", 504: "Error"}, params=(TIMEOUT,)),
]
