"""Fan-out of applied events to open watchers, on the asyncio thread.

The Raft thread hands each applied entry's events to the loop through the
loop's inbox (`EventHub.attach`, cluster/loop_inbox.py). `deliver` then offers each event only
to the watchers that could want it: a watcher is filed under one key of what it
follows (an object id, else a machine, else a kind, else "everything"), so an
event costs a few dictionary look-ups plus the watchers that match, not a test
against every open watcher (1,000 lock waiters on 1,000 objects cost one set
each per event).

A watcher first catches up from the window (`catch_up`), then goes live: the
switch happens with no `await` between the last window read and setting
`after`, and entries are delivered whole and in order on this thread, so every
event reaches it exactly once. Its queue is bounded: a watcher that already
holds `buffer` queued events when a new entry arrives is cut off (`gone`), never
silently skipped; an entry is queued whole, so one large batch never cuts anyone.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator, Sequence

from cluster.loop_inbox import inbox_of

from .window import EventWindow, FeedEvent, Filter, Gone, HeldEntry, Page

PAGE = 1000  # events per window read while catching up


class Watcher:
    def __init__(self, wanted: Filter, after: int, buffer: int) -> None:
        self.wanted = wanted
        self.after = after  # events at or before this index are not for it
        self.live = False
        self.buffer = buffer
        self.queue: deque[FeedEvent] = deque()
        self.gone: Gone | None = None
        self.stopped = False  # the node is shutting down
        self.wake = asyncio.Event()

    def offer(self, event: FeedEvent) -> bool:
        """Queue a live event; False when the queue overflowed (the watcher is then cut off)."""
        if self.gone is not None or event.index <= self.after:
            return True
        if len(self.queue) >= self.buffer and self.queue[-1].index != event.index:
            return False  # full before this entry began: an entry is always queued whole
        self.queue.append(event)
        self.wake.set()
        return True

    def cut_off(self, why: Gone) -> None:
        self.gone = why
        self.queue.clear()
        self.wake.set()

    def take(self) -> list[FeedEvent]:
        events = list(self.queue)
        self.queue.clear()
        self.wake.clear()
        if events:
            self.after = events[-1].index
        return events


class EventHub:
    def __init__(self, window: EventWindow, buffer: int) -> None:
        self.window = window
        self.buffer = buffer
        self._everything: set[Watcher] = set()
        self._by_object: dict[str, set[Watcher]] = {}
        self._by_machine: dict[str, set[Watcher]] = {}
        self._by_kind: dict[str, set[Watcher]] = {}
        self.open = 0
        self.cut = 0  # watchers cut off for falling behind, since start
        self.delivered = 0
        self.delivered_through = 0  # index of the last entry `deliver` handed out

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """From now on, every entry the Raft thread applies is delivered on `loop`."""

        inbox = inbox_of(loop)

        def from_raft(index: int, held: HeldEntry | None, reset: bool) -> None:
            # `open` is read without the loop: a watcher opened after this check reads
            # the entry from the window (appended before the check), so nothing is lost
            if reset:
                inbox.call(self.deliver, index, (), True)
            elif held is not None and self.open:
                inbox.call(self.deliver, index, self.window.feed(held), False)

        self.window.on_entry = from_raft

    def detach(self) -> None:
        """Stop delivering and end every open stream (the node is shutting down)."""
        self.window.on_entry = None
        for watcher in self._all_watchers():
            watcher.stopped = True
            watcher.wake.set()

    # -- watchers -------------------------------------------------------------

    def watch(self, wanted: Filter, since: int) -> Watcher:
        watcher = Watcher(wanted, since, self.buffer)
        for key, index in self._files(wanted):
            index.setdefault(key, set()).add(watcher)
        if not self._file_key(wanted):
            self._everything.add(watcher)
        self.open += 1
        return watcher

    def close(self, watcher: Watcher) -> None:
        for key, index in self._files(watcher.wanted):
            bucket = index.get(key)
            if bucket is not None:
                bucket.discard(watcher)
                if not bucket:
                    del index[key]
        self._everything.discard(watcher)
        self.open -= 1

    def catch_up(self, watcher: Watcher) -> Page:
        """The next page from the window; when it is the last, the watcher is live at once."""
        page = self.window.read(watcher.after, watcher.wanted, PAGE)
        if page.next >= self.window.last:
            watcher.live = True  # no await since the read: nothing can slip in between
        watcher.after = page.next
        return page

    def progress(self, watcher: Watcher) -> int | None:
        """For an idle live watcher: the index through which it has every matching event.

        Every entry through `delivered_through` was offered to it and its queue is empty,
        so nothing it wants lies at or before that index. None when there is no news."""
        if not watcher.live or watcher.queue or watcher.gone is not None:
            return None
        if self.delivered_through <= watcher.after:
            return None
        watcher.after = self.delivered_through
        return watcher.after

    def _file_key(self, wanted: Filter) -> str:
        if wanted.objects:
            return "object"
        if wanted.machines:
            return "machine"
        return "kind" if wanted.kinds else ""

    def _files(self, wanted: Filter) -> Iterator[tuple[str, dict[str, set[Watcher]]]]:
        """The buckets a watcher is filed in: each value of its most selective dimension."""
        where = self._file_key(wanted)
        if where == "object":
            yield from ((key, self._by_object) for key in wanted.objects)
        elif where == "machine":
            yield from ((key, self._by_machine) for key in wanted.machines)
        elif where == "kind":
            yield from ((key, self._by_kind) for key in wanted.kinds)

    # -- delivery (asyncio thread) ----------------------------------------------

    def deliver(self, index: int, batch: Sequence[FeedEvent], reset: bool) -> None:
        if reset:  # a snapshot replaced the state: what lies between is unknown here
            for watcher in self._all_watchers():
                watcher.cut_off(Gone(watcher.after, index))
            return
        self.delivered_through = max(self.delivered_through, index)
        overflowed: list[Watcher] = []
        for event in batch:
            for watcher in self._candidates(event):
                if watcher.live and watcher.wanted.matches(event):
                    if watcher.offer(event):
                        self.delivered += 1
                    else:
                        overflowed.append(watcher)
        for watcher in overflowed:
            if watcher.gone is None:
                self.cut += 1
                watcher.cut_off(Gone(watcher.after, watcher.after, behind=self.buffer))

    def _candidates(self, event: FeedEvent) -> Iterator[Watcher]:
        yield from self._everything
        for index, key in (
            (self._by_object, event.object),
            (self._by_machine, event.machine),
            (self._by_kind, event.kind),
        ):
            bucket = index.get(key)
            if bucket:
                yield from bucket

    def _all_watchers(self) -> set[Watcher]:
        found = set(self._everything)
        for index in (self._by_object, self._by_machine, self._by_kind):
            for bucket in index.values():
                found |= bucket
        return found
