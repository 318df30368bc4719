"""Sending a request on to the leader's HTTP API (membership changes run on the leader).

A follower that takes `POST /v1/cluster/members` or `DELETE /v1/cluster/members/...`
passes it, with its `Authorization` header, to the leader's HTTP address (which
every node knows, see raft/membership.py) and answers with the leader's answer.
A forwarded request carries `X-Fsm-Forwarded: <hops>`; it is forwarded at most
twice (a follower to the leader; a leader that handed over to remove itself, to
the next), else it answers 503 (the leader changed; retry).
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import web

from cluster.errors import Unavailable

from .context import ClusterNode

FORWARDED = "X-Fsm-Forwarded"
MAX_HOPS = 2  # a follower to the leader, and that leader (having handed over) to the next
LEADER_WAIT = 3.0  # seconds to wait for a leader to be known (e.g. right after a hand-over)


async def leader_http(node: ClusterNode, wait: float = LEADER_WAIT) -> str | None:
    """The leader's HTTP address, or None when this node leads; waits briefly for a leader."""
    deadline = time.monotonic() + wait
    while True:
        status = node.status()
        if status.is_leader:
            return None
        if status.leader is not None and status.leader_connected:
            http = node.http_of.get(status.leader)
            if http:
                return http
        if time.monotonic() >= deadline:
            raise Unavailable(f"no leader with a known HTTP address (leader: {status.leader}); retry")
        await asyncio.sleep(0.05)


async def to_leader(request: web.Request, http: str, body: bytes | None, timeout: float) -> web.Response:
    hops = int(request.headers.get(FORWARDED, "0")) if request.headers.get(FORWARDED, "0").isdigit() else 9
    if hops >= MAX_HOPS:
        raise Unavailable("the leader changed while this request was forwarded; retry")
    headers = {FORWARDED: str(hops + 1), "Content-Type": request.headers.get("Content-Type", "application/json")}
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    url = f"http://{http}{request.rel_url}"
    try:
        async with aiohttp.ClientSession() as session, session.request(
            request.method, url, data=body, headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout + 2.0),
        ) as resp:
            payload = await resp.read()
            keep = {k: v for k, v in resp.headers.items() if k in ("Content-Type", "Retry-After")}
            return web.Response(status=resp.status, body=payload, headers=keep)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Unavailable(f"cannot reach the leader at {http}: {exc or type(exc).__name__}") from None
