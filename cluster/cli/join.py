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
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator
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


class _Tries:
    """Ask each `--join` URL in turn, once a second, until `seconds` have passed.

    `last` says what went wrong last: `replies` sets it when a URL does not
    answer, the caller when an answer is not the one it waits for.
    """

    def __init__(self, settings: Settings, seconds: float) -> None:
        assert settings.join
        self.settings = settings
        self.join = settings.join
        self.seconds = seconds
        self.last = "no answer"

    async def replies(self, method: str, path: str, body: Any = None
                      ) -> AsyncGenerator[tuple[str, int, Any], None]:
        """Yield `(url, status, answer)` for every answer, until the time is up."""
        deadline = time.monotonic() + self.seconds
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                for url in _urls(self.join):
                    try:
                        status, answer = await _exchange(session, method, f"{url}{path}",
                                                         self.settings, body)
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        self.last = f"{url}: {exc or type(exc).__name__}"
                        continue
                    yield url, status, answer
                await asyncio.sleep(1.0)


async def discover(settings: Settings, seconds: float = JOIN_SECONDS) -> tuple[Settings, bool]:
    """`settings` with the cluster's members as peers, and whether we are one already."""
    tries = _Tries(settings, seconds)
    async with contextlib.aclosing(tries.replies("GET", "/v1/cluster")) as replies:
        async for url, status, body in replies:
            if status == 200 and isinstance(body, dict):
                peers = tuple(Peer(m["raft"], m.get("http")) for m in body.get("members", ())
                              if m.get("raft") != settings.raft)
                member = any(m.get("raft") == settings.raft for m in body.get("members", ()))
                log.info("joining: members %s", ", ".join(p.raft for p in peers))
                return dataclasses.replace(settings, peers=peers), member
            tries.last = f"{url}: HTTP {status}"
            if status in (401, 403):
                raise SettingsError(f"--join {url}: {status}; give --join-token with an admin token")
    raise SettingsError(f"--join: cannot read the cluster's members ({tries.last})")


async def ask_to_join(settings: Settings, seconds: float = JOIN_SECONDS) -> None:
    """Ask the cluster to add this node; raises `SettingsError` on a final refusal."""
    tries = _Tries(settings, seconds)
    body = {"raft": settings.raft, "http": settings.http}
    async with contextlib.aclosing(tries.replies("POST", "/v1/cluster/members", body)) as replies:
        async for url, status, answer in replies:
            if status == 200:
                log.info("joined the cluster through %s", url)
                return
            tries.last = f"{url}: HTTP {status} {answer}"
            if status not in RETRY_STATUSES:
                raise SettingsError(f"--join: the cluster refused to add this node: {tries.last}")
    raise SettingsError(f"--join: not added within {seconds:g}s ({tries.last})")
