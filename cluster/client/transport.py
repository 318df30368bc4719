"""Sending one API request to a cluster: failover across nodes, bounded retries, deadline.

Which failures may be retried, and where:

- the connection could not be opened: the request never left, so any request
  moves on to the next node;
- `503 unavailable` / `429 overloaded`: the node refused before proposing, so the
  request was certainly not applied; the next node is tried and, once every node
  has been tried in a round, the client sleeps (honouring `Retry-After`, bounded);
- no answer in time, a dropped connection or `504 timeout`: the outcome is
  unknown, so only a `retry_safe` request (a read, a PUT of a definition, a write
  carrying an Idempotency-Key) is sent again; any other raises `Timeout`.

When the deadline passes, a write that some attempt may have applied raises
`Timeout` (retry it with the same key), never `Unavailable`; a read raises
`Unavailable`, since it changed nothing.

Every call has one overall deadline; the last error is raised when it passes.
A node that failed recently is tried last in the next calls, so a dead or frozen
node costs one attempt, not one per call. Before its first request a client
reads `/v1/cluster` from the first node that answers and adds every member's
HTTP address to its list (`discover=False` turns that off).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from .errors import (
    FsmError,
    Overloaded,
    Timeout,
    Unavailable,
    error_from_body,
    parse_retry_after,
)

DEFAULT_URL = "http://127.0.0.1:8101"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    deadline: float = 30.0  # seconds for one call, all retries included
    attempt_timeout: float = 10.0  # seconds for one HTTP exchange with one node
    backoff_initial: float = 0.05  # sleep after the first round in which no node could answer
    backoff_max: float = 1.0
    retry_after_max: float = 2.0  # a node's Retry-After is honoured up to this many seconds
    suspect_for: float = 5.0  # a node that failed is tried last for this long


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str


def normalize_urls(urls: str | Sequence[str] | None) -> list[str]:
    """Base URLs from a comma-separated string or a list; `host:port` gets `http://`."""
    items = [urls] if isinstance(urls, str) else list(urls or [])
    out: list[str] = []
    for item in items:
        for part in item.split(","):
            url = part.strip().rstrip("/")
            if not url:
                continue
            if "://" not in url:
                url = "http://" + url
            if url not in out:
                out.append(url)
    return out or [DEFAULT_URL]


class Transport:
    """One aiohttp session shared by every request of a client, with failover."""

    def __init__(
        self,
        urls: str | Sequence[str] | None,
        policy: RetryPolicy,
        token: str | None = None,
        session: aiohttp.ClientSession | None = None,
        discover: bool = True,
    ) -> None:
        self.urls = normalize_urls(urls)
        self._discover = discover
        self.policy = policy
        self._token = token
        self._session = session
        self._owns_session = session is None
        self._preferred = 0
        self._suspect_until: dict[str, float] = {}

    @property
    def token(self) -> str | None:
        return self._token

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, force_close=False)
            )
            self._owns_session = True
        return self._session

    def round_order(self, now: float) -> list[str]:
        """Every URL once: the last node that answered first, recently failed nodes last."""
        n = len(self.urls)
        rotated = [self.urls[(self._preferred + i) % n] for i in range(n)]
        return sorted(rotated, key=lambda url: self._suspect_until.get(url, 0.0) > now)

    def _mark(self, url: str, *, ok: bool, now: float) -> None:
        if ok:
            self._suspect_until.pop(url, None)
            self._preferred = self.urls.index(url)
        else:
            self._suspect_until[url] = now + self.policy.suspect_for

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        retry_safe: bool = True,
        deadline: float | None = None,
        attempt_timeout: float | None = None,
    ) -> Response:
        """Send until a node gives a final answer; 2xx/3xx returned, errors raised typed."""
        loop = asyncio.get_running_loop()
        policy = self.policy
        end = loop.time() + (deadline if deadline is not None else policy.deadline)
        per_attempt = attempt_timeout if attempt_timeout is not None else policy.attempt_timeout
        send_headers = dict(headers or {})
        if self._token:
            send_headers.setdefault("Authorization", f"Bearer {self._token}")
        if json_body is not None:
            data = orjson.dumps(json_body)
            send_headers.setdefault("Content-Type", "application/json")
        if self._discover:
            self._discover = False
            await self.discover_members(send_headers, min(per_attempt, 2.0))
        backoff = policy.backoff_initial
        last: FsmError | None = None
        ambiguous = False  # an attempt may have applied: a later 503 must not say "not applied"
        while True:
            retry_after = 0.0
            for url in self.round_order(loop.time()):
                remaining = end - loop.time()
                if remaining <= 0:
                    raise _final(last, ambiguous)
                try:
                    response = await self._send(
                        method, url + path, params, data, send_headers, min(remaining, per_attempt)
                    )
                except aiohttp.ClientConnectorError as exc:
                    self._mark(url, ok=False, now=loop.time())
                    last = Unavailable("unavailable", f"cannot connect to {url}: {_reason(exc)}")
                    continue
                except (aiohttp.ClientError, TimeoutError) as exc:
                    self._mark(url, ok=False, now=loop.time())
                    if method == "GET":  # a read changes nothing: no answer is just unavailable
                        # an attempt the overall deadline cut short says nothing about the
                        # node: keep the answer an earlier attempt got (e.g. its Retry-After)
                        if last is None or remaining >= per_attempt:
                            last = Unavailable("unavailable", f"no answer from {url} ({_reason(exc)})")
                        continue
                    last = Timeout(
                        "timeout",
                        f"{method} {url}{path}: no complete answer ({_reason(exc)}); "
                        "the outcome is unknown",
                    )
                    if not retry_safe:
                        raise last from exc
                    ambiguous = True
                    continue
                if response.status < 400:
                    self._mark(url, ok=True, now=loop.time())
                    return response
                error = error_from_body(
                    response.status, response.body, parse_retry_after(response.headers.get("Retry-After"))
                )
                if isinstance(error, Unavailable | Overloaded) or (
                    isinstance(error, Timeout) and retry_safe
                ):
                    self._mark(url, ok=False, now=loop.time())
                    retry_after = max(retry_after, error.retry_after or 0.0)
                    ambiguous = ambiguous or isinstance(error, Timeout)
                    last = error
                    continue
                self._mark(url, ok=True, now=loop.time())
                raise error
            remaining = end - loop.time()
            if remaining <= 0:
                raise _final(last, ambiguous)
            pause = min(max(backoff, min(retry_after, policy.retry_after_max)), remaining)
            await asyncio.sleep(pause)
            backoff = min(backoff * 2, policy.backoff_max)

    async def discover_members(self, headers: Mapping[str, str], timeout: float) -> None:
        """Add every member's HTTP address (from the first node's `/v1/cluster`) to `urls`.

        Best effort, once per client: a client given one URL can then fail over
        to every member. A node that cannot answer is skipped.
        """
        for url in list(self.urls):
            try:
                response = await self._send("GET", url + "/v1/cluster", None, None, headers, timeout)
                body = orjson.loads(response.body) if response.status == 200 else None
            except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
                continue
            if not isinstance(body, dict):
                continue
            scheme = url.split("://", 1)[0]
            for member in body.get("members") or ():
                http = member.get("http") if isinstance(member, dict) else None
                if isinstance(http, str) and http and f"{scheme}://{http}" not in self.urls:
                    self.urls.append(f"{scheme}://{http}")
            return

    async def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        data: bytes | None,
        headers: Mapping[str, str],
        timeout: float,
    ) -> Response:
        session = self._session_now()
        async with session.request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as resp:
            body = await resp.read()
            return Response(resp.status, dict(resp.headers), body, url)


def _final(last: FsmError | None, ambiguous: bool) -> FsmError:
    """The error to raise at the deadline: `Timeout` when some attempt may have applied."""
    if last is None:
        return Timeout("timeout", "the deadline passed before any node was tried")
    if ambiguous and not isinstance(last, Timeout):
        return Timeout(
            "timeout",
            f"the outcome is unknown: an earlier attempt got no answer; last: {last.code}: {last.message}",
            last.details, last.status, last.retry_after,
        )
    return last


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
