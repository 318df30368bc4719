"""The event feed (SPEC 4.7): `GET /v1/events`, a JSON page or a live SSE stream.

Answered from this node's own window of applied events (`cluster.events`), never
forwarded. Resume rule: `since=N` (or `Last-Event-ID: N`, which wins) means
"every matching event of every entry after log index N". On the stream, the
`id:` field is sent with the last matching event of each index, so a client's
last seen id always names an index whose matching events it has all received.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import cast

import orjson
from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from cluster.events.hub import EventHub, Watcher
from cluster.events.window import KINDS, FeedEvent, Filter, Gone

from .. import inputs
from ..context import EVENTS, settings_of
from ..errors import ApiError, error_body
from .table import LIMIT, Param, Route

RETRY_MS = 1000  # the reconnection delay hinted to EventSource clients
SEND_TIMEOUT = 60.0  # a write that cannot go out for this long: the peer is gone


def hub_of(request: web.Request) -> EventHub:
    hub = cast(EventHub | None, request.app.get(EVENTS))
    if hub is None:
        raise ApiError("unavailable", "this node keeps no event feed")
    return hub


def parse_filter(request: web.Request) -> Filter:
    kinds = request.query.getall("kind", [])
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ApiError(
            "invalid_request", f"unknown kind {unknown[0]!r}; kinds are {', '.join(KINDS)}"
        )
    machines = request.query.getall("machine", [])
    objects = request.query.getall("object", [])
    for value in machines:
        inputs.check_id(value, "machine")
    for value in objects:
        inputs.check_id(value, "object")
    return Filter(frozenset(machines), frozenset(objects), frozenset(kinds))


def parse_since(request: web.Request) -> int | None:
    """`Last-Event-ID` (an EventSource reconnecting) wins over the `since` query parameter."""
    for name, raw in (("Last-Event-ID", request.headers.get("Last-Event-ID")),
                      ("since", request.query.get("since"))):
        if raw is None:
            continue
        if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
            raise ApiError(
                "invalid_request", f"{name} must be a log index (an integer >= 0), got {raw!r}"
            )
        return int(raw)
    return None


def gone_error(exc: Gone) -> ApiError:
    return ApiError("gone", exc.message, [{"oldest": exc.floor}])


def frames(events: Sequence[FeedEvent]) -> bytes:
    """SSE messages, with `id:` on the last event of each index (see the module docstring)."""
    last = len(events) - 1
    return b"".join(
        e.id_frame if i == last or events[i + 1].index != e.index else e.frame
        for i, e in enumerate(events)
    )


async def get_events(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    wanted = parse_filter(request)
    since = parse_since(request)
    if "text/event-stream" in request.headers.get("Accept", ""):
        return await stream(request, hub, wanted, since)
    limit = inputs.limit(request)
    try:
        page = hub.window.read(hub.window.floor if since is None else since, wanted, limit)
    except Gone as exc:
        raise gone_error(exc) from None
    body = b'{"events":[' + b",".join(e.blob for e in page.events) + b'],"next":%d}' % page.next
    return web.Response(body=body, content_type="application/json")


async def stream(
    request: web.Request, hub: EventHub, wanted: Filter, since: int | None
) -> web.StreamResponse:
    if since is not None and since < hub.window.floor:  # refused before the stream starts
        raise gone_error(Gone(since, hub.window.floor))
    watcher = hub.watch(wanted, hub.window.last if since is None else since)
    try:
        keepalive = settings_of(request).events_keepalive
        async with sse_response(
            request, ping_interval=keepalive, send_timeout=SEND_TIMEOUT
        ) as response:
            # the id names where this stream starts, so a reconnect before the first event
            # resumes exactly there (an id-only message dispatches nothing)
            await response.write(b"retry: %d\nid: %d\n\n" % (RETRY_MS, watcher.after))
            await pump(request, response, hub, watcher, keepalive)
        return response
    finally:
        hub.close(watcher)


async def pump(
    request: web.Request,
    response: EventSourceResponse,
    hub: EventHub,
    watcher: Watcher,
    keepalive: float,
) -> None:
    """Write the watcher's events until it is cut off, the peer leaves or the node stops."""
    try:
        await follow(request, response, hub, watcher, keepalive)
    except Gone as exc:
        body = error_body("gone", exc.message, [{"oldest": exc.floor}])
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            await response.send(orjson.dumps(body).decode(), event="gone")
    except (ConnectionResetError, TimeoutError):
        return


async def follow(
    request: web.Request,
    response: EventSourceResponse,
    hub: EventHub,
    watcher: Watcher,
    keepalive: float,
) -> None:
    """Catch up from the window, then write live events as they come."""
    while not watcher.live:
        await send(request, response, hub.catch_up(watcher).events)
        await asyncio.sleep(0)  # a long catch-up lets the rest of the node run between pages
    while not watcher.stopped:
        if watcher.gone is not None:
            raise watcher.gone
        events = watcher.take()
        if events:
            await send(request, response, events)
            continue
        try:
            async with asyncio.timeout(keepalive):
                await watcher.wake.wait()
        except TimeoutError:  # the library pings; we notice a peer that left
            if request.transport is None or not response.is_connected():
                return
            await progress(response, hub, watcher)


async def progress(response: EventSourceResponse, hub: EventHub, watcher: Watcher) -> None:
    """An idle filtered stream moves its id on (an id-only message dispatches nothing), so
    a reconnect resumes from a recent index instead of one the window may have dropped."""
    through = hub.progress(watcher)
    if through is not None:
        await response.write(b"id: %d\n\n" % through)


async def send(
    request: web.Request, response: EventSourceResponse, events: Sequence[FeedEvent]
) -> None:
    if not events:
        return
    try:
        async with asyncio.timeout(SEND_TIMEOUT):
            await response.write(frames(events))
    except TimeoutError:
        if request.transport is not None:  # a stalled peer never drains: drop it
            request.transport.abort()
        raise


KIND = Param("kind", "query", f"only events of this kind ({', '.join(KINDS)}); repeatable",
             {"type": "string", "enum": list(KINDS)})
ROUTES = [
    Route("GET", "/v1/events", get_events,
          "Applied events after `since` as a JSON page; with `Accept: text/event-stream` a live "
          "Server-Sent Events stream (`id:` on the last event of each log index)", "events",
          {200: "EventPage", 400: "Error", 410: "Error", 503: "Error"},
          params=(Param("machine", "query", "only events of this machine; repeatable"),
                  Param("object", "query", "only events of this object id; repeatable"),
                  KIND,
                  Param("since", "query", "resume after this log index (default: the oldest held)",
                        {"type": "integer", "minimum": 0}),
                  Param("Last-Event-ID", "header", "resume after this log index (wins over since)"),
                  LIMIT)),
]
