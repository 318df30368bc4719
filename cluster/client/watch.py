"""Following the event feed (SPEC 4.7): an iterator that survives node failures.

    async for event in client.watch(machine="lock", object="db-1"):
        ...

`Watch` reads `GET /v1/events` as Server-Sent Events from one node. Events are
handed out a whole log index at a time: the server sends `id: N` with the last
(matching) event of index N, so the iterator holds an index's events until its
id arrives and only then yields them. `last` is therefore always an index whose
events were all yielded, and a reconnect (to the same or another node) with
`Last-Event-ID: last` neither repeats nor skips an event. A node that dies, stops
answering (no keep-alive within `idle_timeout`) or ends the stream is left for
the next one. `Gone` is raised when no node holds the feed back to `last` any
more, or the node cut this watcher off for reading too slowly and no node can
resume it; re-read the objects you follow and watch again from their index.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from .errors import FsmError, Gone, Unavailable, error_from_body

if TYPE_CHECKING:
    from .clients import Client
    from .transport import Transport

Names = str | Iterable[str] | None
REFUSALS = (400, 401, 403, 404, 413)  # answers that another node would give alike


def _many(value: Names) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class SseParser:
    """Splits an SSE byte stream into messages: (event type, data, id or None)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._data: list[bytes] = []
        self._event = ""
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[tuple[str, bytes, str | None]]:
        self._buffer += chunk
        out: list[tuple[str, bytes, str | None]] = []
        start = 0
        while (end := self._buffer.find(b"\n", start)) >= 0:
            line = bytes(self._buffer[start:end]).rstrip(b"\r")
            start = end + 1
            if not line:
                if self._data or self._id is not None:
                    out.append((self._event or "message", b"\n".join(self._data), self._id))
                self._data, self._event, self._id = [], "", None
                continue
            name, _, value = line.partition(b":")
            value = value[1:] if value.startswith(b" ") else value
            if name == b"data":
                self._data.append(value)
            elif name == b"id":
                self._id = value.decode()
            elif name == b"event":
                self._event = value.decode()
        del self._buffer[:start]
        return out


class Watch:
    """An async iterator over the feed's events; see the module docstring."""

    def __init__(
        self,
        transport: Transport,
        *,
        machine: Names = None,
        object: Names = None,  # noqa: A002 - the feed's parameter name
        kind: Names = None,
        since: int | None = None,
        idle_timeout: float = 60.0,
    ) -> None:
        self._transport = transport
        self._params = [("machine", m) for m in _many(machine)] + [
            ("object", o) for o in _many(object)
        ] + [("kind", k) for k in _many(kind)]
        self.last = since  # every event through this index was yielded (None: from now)
        self.idle_timeout = idle_timeout
        self.reconnects = 0
        self.url: str | None = None  # the node read from now
        self._ready: list[dict[str, Any]] = []
        self._stream: AsyncIterator[list[dict[str, Any]]] | None = None

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while not self._ready:
            if self._stream is None:
                self._stream = self._follow()
            try:
                self._ready = await anext(self._stream)
            except BaseException:  # cancelled, or no node can go on: the next call starts
                self._stream = None  # afresh from `last`, which only counts whole indexes
                raise
        return self._ready.pop(0)

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()  # type: ignore[attr-defined]

    async def _follow(self) -> AsyncIterator[list[dict[str, Any]]]:
        """Whole indexes of events, from node after node; raises when no node can go on."""
        loop = asyncio.get_running_loop()
        failures: list[FsmError] = []
        give_up = loop.time() + self._transport.policy.deadline
        while True:
            for url in self._transport.round_order(loop.time()):
                try:
                    async for batch in self._read(url):
                        failures.clear()
                        give_up = loop.time() + self._transport.policy.deadline
                        yield batch
                except Gone as exc:
                    failures.append(exc)
                except FsmError as exc:
                    if exc.status in REFUSALS:  # the request itself is wrong: no node will do
                        raise
                    self._transport._mark(url, ok=False, now=loop.time())
                    failures.append(exc)
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    self._transport._mark(url, ok=False, now=loop.time())
                    failures.append(_as_error(url, exc))
                self.reconnects += 1
            gone = [f for f in failures if isinstance(f, Gone)]
            if len(gone) >= len(self._transport.urls):
                raise gone[-1]
            if failures and loop.time() > give_up:
                raise failures[-1]
            failures.clear()
            await asyncio.sleep(0.2)  # a round in which no node could serve: all are down

    async def _read(self, url: str) -> AsyncIterator[list[dict[str, Any]]]:
        headers = {"Accept": "text/event-stream"}
        if self.last is not None:
            headers["Last-Event-ID"] = str(self.last)
        token = getattr(self._transport, "_token", None)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        session = self._transport._session_now()
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._transport.policy.attempt_timeout,
            sock_read=self.idle_timeout,
        )
        async with session.get(url + "/v1/events", params=self._params, headers=headers,
                               timeout=timeout) as resp:
            if resp.status != 200:
                raise error_from_body(resp.status, await resp.read(), None)
            self.url = url
            parser, pending = SseParser(), []
            async for chunk in resp.content.iter_any():
                for kind, data, event_id in parser.feed(chunk):
                    if kind == "gone":
                        raise error_from_body(410, data, None)
                    if data:
                        pending.append(orjson.loads(data))
                    if event_id is not None:
                        batch = self._complete(int(event_id), pending)
                        pending = []
                        if batch:
                            yield batch

    def _complete(self, index: int, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events of a finished index, minus any at or before what was already yielded."""
        if self.last is not None and index <= self.last:
            return []
        self.last = index
        return events


def _as_error(url: str, exc: BaseException) -> FsmError:
    if isinstance(exc, FsmError):
        return exc
    return Unavailable("unavailable", f"event stream from {url} broke: {type(exc).__name__}: {exc}")


class SyncWatch:
    """The blocking twin of `Watch`, run on a `Client`'s loop: `for event in client.watch()`."""

    def __init__(self, client: Client, watch: Watch) -> None:
        self._client = client
        self._watch = watch

    @property
    def last(self) -> int | None:
        return self._watch.last

    @property
    def url(self) -> str | None:
        return self._watch.url

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        try:
            return self._client.run(anext(self._watch))
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        self._client.run(self._watch.aclose())

    def __enter__(self) -> SyncWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__: Sequence[str] = ("SseParser", "SyncWatch", "Watch")
