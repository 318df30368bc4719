"""The feed's window and hub without a cluster: pages never split an index, eviction
is `Gone`, a watcher switching from catch-up to live gets every event exactly once while
the Raft side keeps appending, and fan-out looks only at the watchers an event concerns."""

from __future__ import annotations

import asyncio
import random
import threading

import orjson
import pytest

from cluster.events.hub import EventHub
from cluster.events.window import EventWindow, Filter, Gone


def entry(index: int, count: int, objects: int = 5) -> list[dict[str, object]]:
    return [{"index": index, "machine": "m", "object": f"o{(index + i) % objects}",
             "kind": "transition" if i % 2 else "created", "n": i} for i in range(count)]


def fill(window: EventWindow, entries: int, seed: int = 1) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out: list[dict[str, object]] = []
    for index in range(1, entries + 1):
        events = entry(index, rng.choice([0, 1, 1, 2, 5]))
        window.append_entry(index, events)
        out += events
    return out


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 1000])
def test_pages_resume_exactly_and_never_split_an_index(limit: int) -> None:
    window = EventWindow(10_000)
    everything = fill(window, 300)
    for wanted in (Filter(), Filter(objects=frozenset({"o1"})), Filter(kinds=frozenset({"created"}))):
        since, got = 0, []
        while True:
            page = window.read(since, wanted, limit, scan=13)
            got += [orjson.loads(e.blob) for e in page.events]
            if page.next == since:
                break
            assert all(e.index <= page.next for e in page.events)
            since = page.next
        expected = [e for e in everything if wanted.matches(_feed(e))]
        assert got == expected


def _feed(event: dict[str, object]):  # type: ignore[no-untyped-def]
    from cluster.events.window import feed_event

    return feed_event(event)


def test_evicted_indexes_are_gone_and_the_floor_says_where_to_resume() -> None:
    window = EventWindow(10)
    for index in range(1, 21):
        window.append_entry(index, entry(index, 1))
    assert window.floor == 10 and window.first_index() == 11 and len(window) == 10
    with pytest.raises(Gone) as caught:
        window.read(9, Filter(), 100)
    assert caught.value.floor == 10
    assert [e.index for e in window.read(10, Filter(), 100).events] == list(range(11, 21))
    window.reset(50)  # a snapshot through 50 replaced the state
    with pytest.raises(Gone):
        window.read(20, Filter(), 100)
    assert window.read(50, Filter(), 100).events == []


def test_whole_entries_are_pushed_out_and_an_entry_larger_than_the_window_is_gone() -> None:
    window = EventWindow(10)
    for index in range(1, 5):  # 12 events of 3 per entry: entry 1 goes, 2-4 stay (9 events)
        window.append_entry(index, entry(index, 3))
    assert (window.floor, window.first_index(), len(window)) == (1, 2, 9)
    assert [e.index for e in window.read(1, Filter(), 100).events] == [2, 2, 2, 3, 3, 3, 4, 4, 4]
    window.append_entry(5, entry(5, 11))  # more than the window holds: nothing of it is kept
    assert (window.floor, window.first_index(), len(window)) == (5, None, 0)
    with pytest.raises(Gone):
        window.read(4, Filter(), 100)
    window.append_entry(6, entry(6, 2))
    assert [e.index for e in window.read(5, Filter(), 100).events] == [6, 6]


async def test_a_page_and_a_live_watcher_share_each_event_and_its_encoding() -> None:
    window = EventWindow(100)
    hub = EventHub(window, buffer=100)
    hub.attach(asyncio.get_running_loop())
    watcher = hub.watch(Filter(), 0)
    watcher.live = True
    window.append_entry(1, entry(1, 3))
    for _ in range(1000):  # delivered through the loop's inbox
        if len(watcher.queue) == 3:
            break
        await asyncio.sleep(0.001)
    page = window.read(0, Filter(), 100).events
    assert len(page) == 3 and all(a is b for a, b in zip(page, watcher.take(), strict=True))
    assert page[0].frame is page[0].frame  # encoded once, then shared
    hub.close(watcher)


async def test_catching_up_then_live_yields_each_event_once_while_raft_appends() -> None:
    window = EventWindow(100_000)
    hub = EventHub(window, buffer=1_000_000)
    hub.attach(asyncio.get_running_loop())
    fill(window, 200)
    everything: list[bytes] = [e.blob for e in window.read(0, Filter(), 10**9).events]

    def raft() -> None:  # appends on its own thread, like the Raft thread
        for index in range(201, 2001):
            events = entry(index, index % 3)
            window.append_entry(index, events)
            everything.extend(orjson.dumps(e) for e in events)

    watcher = hub.watch(Filter(), 0)
    got: list[bytes] = []
    thread = threading.Thread(target=raft)
    thread.start()
    while not watcher.live:
        got += [e.blob for e in hub.catch_up(watcher).events]
        await asyncio.sleep(0)
    while thread.is_alive() or watcher.queue or watcher.after < 2000:
        got += [e.blob for e in watcher.take()]
        await asyncio.sleep(0.001)
    thread.join()
    hub.close(watcher)
    assert got == everything


def test_fan_out_offers_an_event_only_to_the_watchers_filed_under_it() -> None:
    hub = EventHub(EventWindow(100), buffer=10)
    waiters = [hub.watch(Filter(objects=frozenset({f"o{i}"})), 0) for i in range(1000)]
    everyone = hub.watch(Filter(), 0)
    for watcher in [*waiters, everyone]:
        watcher.live = True
    event = _feed({"index": 1, "machine": "m", "object": "o7", "kind": "transition"})
    assert list(hub._candidates(event)) == [everyone, waiters[7]]
    hub.deliver(1, [event], False)
    assert [len(w.queue) for w in waiters].count(1) == 1 and len(everyone.queue) == 1
    for index in range(2, 30):  # `everyone` never reads: cut off past its buffer, not skipped
        hub.deliver(index, [_feed({"index": index, "machine": "m", "object": "o1", "kind": "x"})], False)
    assert everyone.gone is not None and hub.cut == 2  # o1's waiter fell behind too
    assert waiters[7].gone is None
