"""The bounded window of recent events a node keeps, filled on the Raft thread after apply.

`EventWindow.append_entry` runs on the Raft thread (an applied-entry listener): it
encodes each event of the entry once, appends it to a ring buffer and hands the
batch to `on_entry` (the asyncio side hands it on through the loop's inbox,
cluster/loop_inbox.py; nothing here blocks). Readers on the asyncio thread take pages out of the ring
under the same short lock.

Positions: `floor` is the highest log index whose events may no longer all be
held (0 on a node that applied the log from its start; a snapshot's index after
loading one; the index of the last event pushed out of the ring). A reader may
resume after any index `>= floor`; older is `Gone`. `last` is the index of the
last entry applied, with or without events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import msgspec
import orjson

from cluster.core.event import AnyEvent, Event, json_default

MAX_SCAN = 20_000  # events one read looks at, at most (plus the rest of its last index)
KINDS = ("created", "transition", "removed", "emitted", "task", "vote", "expired")


class FeedEvent(msgspec.Struct, gc=False):
    """One event as the feed stores it: what filters look at, and its JSON once encoded.

    Built on the Raft thread for every event of every entry, so it is a msgspec struct
    (built in C) that keeps the engine's event and encodes it on first use: the first
    reader (a page or a live watcher) pays for the JSON, every later one shares the
    bytes, and a node nobody watches never encodes. Two readers racing on a new event
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


class EventWindow:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("the event window needs room for at least one event")
        self.capacity = capacity
        self._ring: list[FeedEvent | None] = [None] * capacity
        self._start = 0  # sequence number of the oldest event held
        self._end = 0  # sequence number the next event gets
        self.floor = 0
        self.last = 0
        self.resets = 0
        self._lock = threading.Lock()
        self.on_entry: Callable[[int, Sequence[FeedEvent], bool], None] | None = None

    # -- the Raft thread ----------------------------------------------------

    def append_entry(self, index: int, events: Iterable[AnyEvent]) -> None:
        """Called once per applied Raft entry, in log order, with every event it produced."""
        batch = [feed_event(e) for e in events]
        with self._lock:
            if batch:
                self._push_all(batch)
            self.last = max(self.last, index)
        if self.on_entry is not None:
            self.on_entry(index, batch, False)

    def reset(self, index: int) -> None:
        """The state was replaced by a snapshot through `index`: events before it are unknown."""
        with self._lock:
            self._ring = [None] * self.capacity
            self._start = self._end = 0
            self.floor = self.last = index
            self.resets += 1
        if self.on_entry is not None:
            self.on_entry(index, [], True)

    def _push_all(self, batch: list[FeedEvent]) -> None:
        """Appends the events, pushing the oldest out when full (one loop over local names)."""
        ring, capacity = self._ring, self.capacity
        start, end = self._start, self._end
        for event in batch:
            if end - start == capacity:
                evicted = ring[start % capacity]
                assert evicted is not None
                if evicted.index > self.floor:
                    self.floor = evicted.index
                start += 1
            ring[end % capacity] = event
            end += 1
        self._start, self._end = start, end

    # -- readers --------------------------------------------------------------

    def __len__(self) -> int:
        return self._end - self._start

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
                event = self._ring[seq % self.capacity]
                assert event is not None
                if event.index != previous and (len(out) >= limit or scan <= 0):
                    return Page(out, previous)
                if wanted.matches(event):
                    out.append(event)
                previous = event.index
                seq, scan = seq + 1, scan - 1
            return Page(out, max(self.last, since))

    def _first_after(self, since: int) -> int:
        low, high = self._start, self._end
        while low < high:
            mid = (low + high) // 2
            event = self._ring[mid % self.capacity]
            assert event is not None
            if event.index <= since:
                low = mid + 1
            else:
                high = mid
        return low
