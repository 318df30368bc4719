"""`fsmcluster node --join URL`: find a running cluster's members, then ask it to add this node.

Before Raft starts, the node reads `/v1/cluster` from the URL (or any of several,
comma-separated) and takes the members' Raft addresses as its peers (pysyncobj
needs them). Once its Raft port is up, it sends `POST /v1/cluster/members`
(any member forwards it to the leader), retrying while the cluster answers 503,
504 or 409 (another change in progress), for at most `JOIN_SECONDS`. A node
that is already a member (a restart) skips the request. It then catches up like
any member: from the leader's log or snapshot, or first from the newest Redis
snapshot when its data dir is empty and `--redis` is set.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

import aiohttp

from cluster.config import Peer, Settings, SettingsError

log = logging.getLogger("fsmcluster.join")
JOIN_SECONDS = 120.0
RETRY_STATUSES = {409, 429, 503, 504}


def _urls(join: str) -> list[str]:
    out = []
    for part in join.split(","):
        url = part.strip().rstrip("/")
        if url:
            out.append(url if "://" in url else f"http://{url}")
    return out


def _headers(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.join_token}"} if settings.join_token else {}


async def _exchange(session: aiohttp.ClientSession, method: str, url: str, settings: Settings,
                    body: Any = None) -> tuple[int, Any]:
    async with session.request(method, url, json=body, headers=_headers(settings),
                               timeout=aiohttp.ClientTimeout(total=15)) as resp:
        try:
            return resp.status, await resp.json(content_type=None)
        except ValueError:
            return resp.status, None


async def discover(settings: Settings, seconds: float = JOIN_SECONDS) -> tuple[Settings, bool]:
    """`settings` with the cluster's members as peers, and whether we are one already."""
    assert settings.join
    deadline = time.monotonic() + seconds
    last = "no answer"
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            for url in _urls(settings.join):
                try:
                    status, body = await _exchange(session, "GET", f"{url}/v1/cluster", settings)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    last = f"{url}: {exc or type(exc).__name__}"
                    continue
                if status == 200 and isinstance(body, dict):
                    peers = tuple(Peer(m["raft"], m.get("http")) for m in body.get("members", ())
                                  if m.get("raft") != settings.raft)
                    member = any(m.get("raft") == settings.raft for m in body.get("members", ()))
                    log.info("joining: members %s", ", ".join(p.raft for p in peers))
                    return dataclasses.replace(settings, peers=peers), member
                last = f"{url}: HTTP {status}"
                if status in (401, 403):
                    raise SettingsError(f"--join {url}: {status}; give --join-token with an admin token")
            await asyncio.sleep(1.0)
    raise SettingsError(f"--join: cannot read the cluster's members ({last})")


async def ask_to_join(settings: Settings, seconds: float = JOIN_SECONDS) -> None:
    """Ask the cluster to add this node; raises `SettingsError` on a final refusal."""
    assert settings.join
    body = {"raft": settings.raft, "http": settings.http}
    deadline = time.monotonic() + seconds
    last = "no answer"
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            for url in _urls(settings.join):
                try:
                    status, answer = await _exchange(session, "POST", f"{url}/v1/cluster/members",
                                                     settings, body)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    last = f"{url}: {exc or type(exc).__name__}"
                    continue
                if status == 200:
                    log.info("joined the cluster through %s", url)
                    return
                last = f"{url}: HTTP {status} {answer}"
                if status not in RETRY_STATUSES:
                    raise SettingsError(f"--join: the cluster refused to add this node: {last}")
            await asyncio.sleep(1.0)
    raise SettingsError(f"--join: not added within {seconds:g}s ({last})")
