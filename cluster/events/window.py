"""The bounded window of recent events a node keeps, filled on the Raft thread after apply.

`EventWindow.append_entry` runs on the Raft thread (an applied-entry listener): it
keeps the entry's events as the engine made them (one `HeldEntry` in a ring buffer
of entries) and hands it to `on_entry` (the hub, which wraps them for live watchers
and hands them on through the loop's inbox, cluster/loop_inbox.py; nothing here
blocks). An entry's events are wrapped as `FeedEvent`s the first time anything
reads them (a page or a live watcher) and kept so, so every reader shares one
encoding, and a node nobody watches builds nothing per event. Readers on the
asyncio thread take pages out of the ring under the same short lock.

The window holds at most `capacity` events: a new entry pushes out whole entries,
oldest first (an entry larger than the window is not held at all).

Positions: `floor` is the highest log index whose events may no longer all be
held (0 on a node that applied the log from its start; a snapshot's index after
loading one; the index of the last entry pushed out of the ring). A reader may
resume after any index `>= floor`; older is `Gone`. `last` is the index of the
last entry applied, with or without events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec
import orjson

from cluster.core.event import AnyEvent, Event, json_default

MAX_SCAN = 20_000  # events one read looks at, at most (plus the rest of its last index)
KINDS = ("created", "transition", "removed", "emitted", "task", "vote", "expired")


class FeedEvent(msgspec.Struct, gc=False):
    """One event as the feed stores it: what filters look at, and its JSON once encoded.

    Built for every event of an entry the first time anything reads the entry (a page,
    or live watchers when the entry is applied), so it is a msgspec struct (built in C)
    that keeps the engine's event and encodes it on first use: the first reader pays
    for the JSON, every later one shares the bytes, and a node nobody watches neither
    wraps nor encodes. Two readers racing on a new event
    both encode the same bytes; either result is kept. The event dict is never changed
    after its entry was applied (the engine builds new dicts), so the bytes are what
    they would have been at apply time."""

    index: int
    machine: str
    object: str
    kind: str
    event: AnyEvent
    encoded: bytes | None = None

    @property
    def frame(self) -> bytes:
        """Its SSE message `data: <JSON>\n\n`; orjson never writes a raw newline."""
        frame = self.encoded
        if frame is None:
            blob = orjson.dumps(self.event, default=json_default)
            frame = self.encoded = b"data: " + blob + b"\n\n"
        return frame

    @property
    def id_frame(self) -> bytes:
        """The same with the `id:` of its index."""
        return self.frame[:-1] + b"id: %d\n\n" % self.index

    @property
    def blob(self) -> bytes:
        """The SPEC 4.7 event JSON."""
        return self.frame[6:-2]


@dataclass(frozen=True, slots=True)
class Filter:
    """What a reader follows; an empty set follows everything of that dimension."""

    machines: frozenset[str] = frozenset()
    objects: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()

    def matches(self, event: FeedEvent) -> bool:
        return (
            (not self.machines or event.machine in self.machines)
            and (not self.objects or event.object in self.objects)
            and (not self.kinds or event.kind in self.kinds)
        )


class Gone(Exception):
    """The reader asked to resume after an index the window no longer fully holds."""

    def __init__(self, since: int, floor: int, behind: int | None = None) -> None:
        if behind is not None:
            message = (
                f"this watcher fell more than {behind} events behind and was cut off; "
                f"resume after index {since} (Last-Event-ID) and read faster"
            )
        else:
            message = (
                f"events after index {since} are no longer held by this node (it holds those "
                f"after index {floor}); re-read the objects you follow, then resume with "
                f"since >= {floor}"
            )
        super().__init__(message)
        self.message = message
        self.since = since
        self.floor = floor


@dataclass(frozen=True, slots=True)
class Page:
    events: list[FeedEvent]
    next: int  # resume after this index


def feed_event(event: AnyEvent) -> FeedEvent:
    """Encoded once, on first use (see FeedEvent); every reader shares the bytes."""
    if event.__class__ is Event:  # most events: its fields, without the Mapping's calls
        return FeedEvent(event.index, event.machine, event.object,  # type: ignore[attr-defined]
                         event.kind, event)  # type: ignore[attr-defined]
    return FeedEvent(
        int(event["index"]),
        str(event.get("machine", "")),
        str(event.get("object", "")),
        str(event.get("kind", "")),
        event,
    )


class HeldEntry(msgspec.Struct, gc=False):
    """One applied entry's events as the window holds them: the engine's events until
    something reads them, then their `FeedEvent`s (`EventWindow.feed`)."""

    index: int
    count: int
    events: Sequence[AnyEvent]
    feed: list[FeedEvent] | None = None


class EventWindow:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("the event window needs room for at least one event")
        self.capacity = capacity  # events; every entry held has one at least, so also entries
        self._ring: list[HeldEntry | None] = [None] * capacity
        self._start = 0  # sequence number of the oldest entry held
        self._end = 0  # sequence number the next entry gets
        self._held = 0  # events held
        self.floor = 0
        self.last = 0
        self.resets = 0
        self._lock = threading.Lock()
        self.on_entry: Callable[[int, HeldEntry | None, bool], None] | None = None

    # -- the Raft thread ----------------------------------------------------

    def append_entry(self, index: int, events: Sequence[AnyEvent]) -> None:
        """Called once per applied Raft entry, in log order, with every event it produced
        (kept, not copied: the engine never changes an entry's events after apply)."""
        held = HeldEntry(index, len(events), events) if events else None
        with self._lock:
            if held is not None:
                self._push(held)
            self.last = max(self.last, index)
        if self.on_entry is not None:
            self.on_entry(index, held, False)

    def reset(self, index: int) -> None:
        """The state was replaced by a snapshot through `index`: events before it are unknown."""
        with self._lock:
            self._ring = [None] * self.capacity
            self._start = self._end = self._held = 0
            self.floor = self.last = index
            self.resets += 1
        if self.on_entry is not None:
            self.on_entry(index, None, True)

    def _push(self, held: HeldEntry) -> None:
        """Appends the entry, pushing the oldest entries out while the events do not fit."""
        ring, capacity = self._ring, self.capacity
        while self._start < self._end and self._held + held.count > capacity:
            slot = self._start % capacity
            evicted = ring[slot]
            assert evicted is not None
            ring[slot] = None
            self._held -= evicted.count
            self.floor = max(self.floor, evicted.index)
            self._start += 1
        if held.count > capacity:  # larger than the whole window: gone as it arrives
            self.floor = max(self.floor, held.index)
            return
        ring[self._end % capacity] = held
        self._end += 1
        self._held += held.count

    # -- readers --------------------------------------------------------------

    def feed(self, held: HeldEntry) -> list[FeedEvent]:
        """The entry's events as `FeedEvent`s, wrapped on the first call (any thread)."""
        with self._lock:
            return self._feed(held)

    @staticmethod
    def _feed(held: HeldEntry) -> list[FeedEvent]:
        feed = held.feed
        if feed is None:
            feed = held.feed = [feed_event(e) for e in held.events]
            held.events = ()  # the FeedEvents hold them now
        return feed

    def __len__(self) -> int:
        return self._held

    def first_index(self) -> int | None:
        with self._lock:
            if self._end == self._start:
                return None
            first = self._ring[self._start % self.capacity]
            return first.index if first is not None else None

    def read(self, since: int, wanted: Filter, limit: int, scan: int = MAX_SCAN) -> Page:
        """Matching events after index `since`: `limit` of them, or fewer when the window
        (or the `scan` budget, which keeps the lock short) ends first.

        A page never ends inside an index: it takes the rest of the last index's
        events, so `next` (the index to resume after) never splits one.
        """
        with self._lock:
            if since < self.floor:
                raise Gone(since, self.floor)
            seq = self._first_after(since)
            out: list[FeedEvent] = []
            previous = since
            while seq < self._end:
                if len(out) >= limit or scan <= 0:
                    return Page(out, previous)
                held = self._ring[seq % self.capacity]
                assert held is not None
                for event in self._feed(held):
                    if wanted.matches(event):
                        out.append(event)
                previous = held.index
                seq, scan = seq + 1, scan - held.count
            return Page(out, max(self.last, since))

    def _first_after(self, since: int) -> int:
        low, high = self._start, self._end
        while low < high:
            mid = (low + high) // 2
            held = self._ring[mid % self.capacity]
            assert held is not None
            if held.index <= since:
                low = mid + 1
            else:
                high = mid
        return low
