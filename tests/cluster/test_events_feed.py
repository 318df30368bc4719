"""The event feed (SPEC 4.7) on real node processes: every node streams the same events,
resumes are exact across nodes and entries with several events, a `Client.watch` survives
`kill -9` of its node, the kinds carry their fields, a lagging reader is cut off with
`gone`, an old `since` is 410, and two lock holders hand over through the feed.

One cluster serves the whole module (tests run in file order; the last ones push old
events out of its small window on purpose)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cluster.client import Client, Gone, InvalidRequest
from tests.cluster.conftest import lock_source
from tests.cluster.harness import ROOT, Cluster, Http
from tests.cluster.sse import SseReader

WINDOW, BUFFER = 3000, 200
FLIP = """
states: {a: {}}
transitions:
  create: {from: null, to: a}
  touch: {from: a}
"""
CHAIN = """
states: {new: {}, paid: {}, shipped: {}}
transitions:
  create: {from: null, to: new}
  pay: {from: new, to: paid, emit: order-paid, then: [{transition: ship}]}
  ship: {from: paid, to: shipped}
"""
LIFE = """
states:
  idle: {}
  held: {timeout: {after: 300ms, transition: expire}}
  review: {}
  work:
    tasks: [{name: build, executor: lambda}]
  done: {}
transitions:
  create: {from: null, to: idle}
  hold: {from: idle, to: held}
  expire: {from: held, to: idle}
  ask: {from: idle, to: review, emit: asked}
  approve:
    from: review
    to: idle
    votes: {voters: [alice, bob], quorum: all, timeout: 300ms}
  start: {from: idle, to: work}
  next: {from: work, to: done}
"""


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("feed"), n=3, extra_args=[
        "--events-window", str(WINDOW), "--events-buffer", str(BUFFER), "--events-keepalive", "1"])
    try:
        cluster.start()
        http = cluster.http(cluster.leader_index())
        for name, source in (("flip", FLIP), ("chain", CHAIN), ("life", LIFE), ("lock", lock_source())):
            assert http.put(f"/v1/machines/{name}", body=source, content_type="application/yaml").status in (200, 201)
        yield cluster
    finally:
        cluster.stop()


def position(http: Http) -> int:
    """The feed's current end on this node: resuming after it starts from now."""
    r = http.get("/v1/cluster")
    assert r.status == 200, r
    return int(r.json["events"]["last_index"])


def reached(http: Http, index: int, timeout: float = 10.0) -> Http:
    """`http` once its node's feed holds `index`: a page is a read of that node's window,
    and a follower may apply an entry a moment after the node that answered the write."""
    deadline = time.monotonic() + timeout
    while position(http) < index:
        assert time.monotonic() < deadline, f"the node's feed did not reach index {index}"
        time.sleep(0.02)
    return http


def page_all(http: Http, since: int, query: str = "") -> list[dict[str, Any]]:
    """Every event after `since` through JSON pages (the uninterrupted reference)."""
    out: list[dict[str, Any]] = []
    while True:
        r = http.get(f"/v1/events?since={since}&limit=1000{query}")
        assert r.status == 200, r
        out += r.json["events"]
        if r.json["next"] == since:
            return out
        since = r.json["next"]


def key(e: dict[str, Any]) -> tuple[Any, ...]:
    return (e["index"], e["machine"], e["object"], e["kind"], e.get("version"), e.get("transition"))


def test_every_node_streams_the_same_events_matching_histories(feed: Cluster) -> None:
    start = position(feed.http(0))
    readers = [SseReader(url, f"/v1/events?machine=flip&since={start}") for url in feed.urls]
    ids = [f"f{i}" for i in range(20)]
    for i, oid in enumerate(ids):
        assert feed.http(i % 3).post(f"/v1/machines/flip/objects/{oid}/transitions/create", json={}).status == 201

    def writer(w: int) -> None:
        http = Http(feed.urls[w % 3])
        for n in range(125):  # 4 writers x 125 = 500 transitions
            oid = ids[(w * 7 + n) % 20]
            r = http.post(f"/v1/machines/flip/objects/{oid}/transitions/touch", json={"data": {"w": w, "n": n}})
            assert r.status == 200, r
        http.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    end = max(int(feed.http(0).get(f"/v1/machines/flip/objects/{oid}").json["index"]) for oid in ids)
    try:
        for reader in readers:
            reader.wait_for_id(end, timeout=60)
        streams = [[e for e in r.events() if e["index"] <= end] for r in readers]
    finally:
        for reader in readers:
            reader.close()
    assert len(streams[0]) == 520
    assert streams[0] == streams[1] == streams[2]  # the same events, fields and order on every node
    indexes = [e["index"] for e in streams[0]]
    assert indexes == sorted(indexes)
    assert len({(e["object"], e["version"]) for e in streams[0]}) == 520  # no duplicates
    for oid in ids:  # each object's stream is its history, version by version
        mine = [e for e in streams[0] if e["object"] == oid]
        assert [e["version"] for e in mine] == list(range(1, len(mine) + 1))
        history = feed.http(1).get(f"/v1/machines/flip/objects/{oid}/history?limit=1000").json["events"]
        assert [key(e) for e in reversed(history)] == [key(e) for e in mine]
        assert [e["data"] for e in reversed(history)] == [e["data"] for e in mine]


def test_resume_on_another_node_is_exact_across_entries_with_several_events(feed: Cluster) -> None:
    http = feed.http(0)
    start = position(http)
    for oid in ("o1", "o2"):
        http.post(f"/v1/machines/chain/objects/{oid}/transitions/create", json={})
    assert http.post("/v1/machines/chain/objects/o1/transitions/pay", json={}).status == 200  # then + emit
    batch = {"atomic": True, "operations": [
        {"machine": "chain", "id": "o2", "transition": "pay"},
        {"machine": "chain", "id": "b1", "transition": "create"},
        {"machine": "chain", "id": "b2", "transition": "create"}]}
    assert http.post("/v1/batch", json=batch).status == 200
    http.post("/v1/machines/chain/objects/b1/transitions/pay", json={})
    end = position(http)
    full = page_all(reached(feed.http(2), end), start, "&machine=chain")
    indexes = [e["index"] for e in full]
    assert max(indexes.count(i) for i in set(indexes)) >= 5  # the batch: 3 ops, 1 entry
    whole = SseReader(feed.urls[0], f"/v1/events?machine=chain&since={start}")
    whole.wait_for_id(end)
    whole.close()
    messages = [m for m in whole.messages if m[1]]
    assert [json.loads(m[1]) for m in messages] == full
    for cut in range(len(messages)):  # the connection breaks after message `cut`
        seen = [m for m in messages[:cut + 1]]
        ids = [int(m[2]) for m in seen if m[2] is not None]
        last = ids[-1] if ids else start
        kept = [json.loads(m[1]) for m in seen if json.loads(m[1])["index"] <= last]
        resumed = SseReader(feed.urls[1 + cut % 2], "/v1/events?machine=chain", last_event_id=last)
        if last < end:
            resumed.wait_for_id(end)
        else:
            resumed.wait_until(lambda r=resumed: r.status is not None and len(r.messages) >= 1)
        resumed.close()
        assert kept + [e for e in resumed.events() if e["index"] <= end] == full, f"cut after {cut}"


def test_client_watch_carries_on_after_its_node_is_killed(feed: Cluster) -> None:
    start = position(feed.http(1))
    client = Client(feed.urls, deadline=60)
    watch = client.watch(machine="flip", object=["f1", "f2"], since=start)
    got: list[dict[str, Any]] = []
    finished = threading.Event()

    def consume() -> None:
        for event in watch:
            got.append(event)
            if len(got) == 40:
                break
        finished.set()

    threading.Thread(target=consume, daemon=True).start()
    for n in range(20):
        _touch(feed, f"f{1 + n % 2}", n, [0, 1, 2])
    deadline = time.monotonic() + 30
    while len(got) < 20 or watch.url is None:
        assert time.monotonic() < deadline, f"the watch saw {len(got)} events"
        time.sleep(0.05)
    victim = feed.urls.index(watch.url)
    feed.kill(victim)
    survivors = [i for i in range(3) if i != victim]
    try:
        for n in range(20, 40):
            _touch(feed, f"f{1 + n % 2}", n, survivors)
        assert finished.wait(60), f"the watch saw {len(got)} of 40 events"
        # the watch's node may be ahead of this one by an entry it has not applied yet
        reference = wait_events(feed.http(survivors[0]), start, "&machine=flip&object=f1&object=f2",
                                lambda events: len(events) >= 40)
        assert len(reference) == 40
        assert got == reference  # nothing lost, nothing repeated across the failover
        assert watch.url != feed.urls[victim]
    finally:
        watch.close()
        client.close()
        feed.restart(victim)


def _touch(feed: Cluster, oid: str, n: int, among: list[int]) -> None:
    """One `touch`, retried (with its Idempotency-Key) through a leader change."""
    for attempt in range(120):
        try:
            r = feed.http(among[attempt % len(among)]).post(
                f"/v1/machines/flip/objects/{oid}/transitions/touch", json={"data": {"n": n}},
                headers={"Idempotency-Key": f"touch-{oid}-{n}"})
        except OSError:
            r = None
        if r is not None and r.status == 200:
            return
        time.sleep(0.25)
    raise AssertionError(f"touch {oid} {n} never applied")


def wait_events(http: Http, since: int, query: str, check: Any, timeout: float = 20) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        events = page_all(http, since, query)
        if check(events):
            return events
        assert time.monotonic() < deadline, f"feed: {events}"
        time.sleep(0.1)


def test_emit_expiries_votes_and_tasks_are_on_the_feed(feed: Cluster) -> None:
    http = feed.http(0)
    start = position(http)
    obj = "/v1/machines/life/objects"
    for oid in ("l1", "l2"):
        assert http.post(f"{obj}/{oid}/transitions/create", json={}).status == 201
    assert http.post(f"{obj}/l1/transitions/hold", json={}).status == 200  # a 300 ms lease
    q = "&machine=life&object=l1"
    events = wait_events(http, start, q, lambda es: any(e["kind"] == "expired" for e in es))
    expired = next(e for e in events if e["kind"] == "expired")
    assert (expired["expired"], expired["transition"], expired["from"]) == ("timeout", "expire", "held")
    move = [e for e in events if e["index"] == expired["index"] and e["kind"] == "transition"]
    assert [(m["transition"], m["from"], m["to"]) for m in move] == [("expire", "held", "idle")]

    assert http.post(f"{obj}/l1/transitions/ask", json={"data": {"q": 1}}).status == 200
    r = http.post(f"{obj}/l1/transitions/approve", json={})
    assert r.status == 202, r
    change = r.json["pending"]["change"]
    assert http.put(f"{obj}/l1/votes/alice", json={"approve": True, "change": change}).status == 200
    events = wait_events(http, start, q, lambda es: sum(e["kind"] == "expired" for e in es) == 2)
    emitted = [e for e in events if e["kind"] == "emitted"]
    assert [(e["event"], e["transition"], e["data"]) for e in emitted] == [("asked", "ask", {"q": 1})]
    votes = [e for e in events if e["kind"] == "vote"]
    assert [v["outcome"] for v in votes] == ["proposed", "pending"]
    assert (votes[1]["voter"], votes[1]["approve"], votes[1]["change"]) == ("alice", True, change)
    assert votes[1]["tally"] == {"approve": 1, "reject": 0, "required": 2}
    lapsed = [e for e in events if e["kind"] == "expired"][1]
    assert (lapsed["expired"], lapsed["outcome"], lapsed["change"]) == ("vote", "expired", change)

    assert http.post(f"{obj}/l2/transitions/start", json={}).status == 200
    assert http.post(f"{obj}/l2/tasks/build", json={"status": "failed", "error": "boom"}).status == 200
    assert http.post(f"{obj}/l2/tasks:retry", json={"status": "failed"}).status == 200
    assert http.post(f"{obj}/l2/tasks/build", json={"status": "completed", "data": {"ok": 1}}).status == 200
    events = page_all(http, start, "&machine=life&object=l2&kind=task&kind=transition")
    tasks = [(e["task"], e["status"], e["error"]) for e in events if e["kind"] == "task"]
    assert tasks == [("build", "issued", None), ("build", "failed", "boom"), ("build", "retried", None),
                     ("build", "completed", None)]
    last = events[-1]
    assert (last["kind"], last["transition"], last["to"], last["index"]) == (
        "transition", "next", "done", events[-2]["index"])  # `next` fired in the same entry


def test_an_idle_filtered_stream_moves_its_id_on(feed: Cluster) -> None:
    http = feed.http(2)
    start = position(http)
    quiet = SseReader(feed.urls[2], f"/v1/events?object=nobody&since={start}")
    try:
        for n in range(3):
            _touch(feed, "f3", 100 + n, [2])
        quiet.wait_for_id(position(http), timeout=15)  # keep-alive is 1 s in this cluster
    finally:
        quiet.close()
    assert quiet.events() == []


def test_cli_watch_prints_json_lines_and_readable_lines(feed: Cluster) -> None:
    start = position(feed.http(0))
    for n in range(3):
        _touch(feed, "f4", 200 + n, [0])
    outputs = []
    for extra in (["--json"], []):
        proc = subprocess.Popen(
            [sys.executable, "-m", "cluster", "watch", "--url", feed.urls[1], "--machine", "flip",
             "--object", "f4", "--since", str(start), *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            outputs.append([proc.stdout.readline() for _ in range(3)])
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    events = [json.loads(line) for line in outputs[0]]
    assert [(e["object"], e["kind"], e["data"]["n"]) for e in events] == [("f4", "transition", n) for n in (200, 201, 202)]
    assert all(f"#{e['index']} " in line and "flip/f4" in line and "touch a -> a" in line
               for e, line in zip(events, outputs[1], strict=True))


def test_lock_waiters_hand_over_through_the_feed(feed: Cluster) -> None:
    script = """
import json, sys, time
from cluster.client import Client, Lock
urls, me = sys.argv[1].split(","), sys.argv[2]
with Client(urls) as client:
    lock = Lock(client, "handover", me)
    for _ in range(2):
        lock.acquire(wait=True, timeout=30)
        got = time.time()
        time.sleep(1.5)
        released = time.time()
        lock.release()
        print(json.dumps([me, got, released]), flush=True)
        time.sleep(0.3)
"""
    before = conflicts(feed)
    procs = [subprocess.Popen([sys.executable, "-c", script, ",".join(feed.urls), who], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True) for who in ("p-one", "p-two")]
    holds = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        holds += [json.loads(line) for line in out.splitlines()]
    holds.sort(key=lambda h: h[1])
    assert len(holds) == 4
    gaps = [nxt[1] - cur[2] for cur, nxt in zip(holds, holds[1:], strict=False)]
    assert all(g > 0 for g in gaps), holds  # never held twice at once
    assert max(gaps) < 1.0, gaps  # handed over on the release event, not on a poll
    # a waiter tries, fails once, then waits on the feed: no stream of refused attempts
    assert conflicts(feed) - before <= 6


def conflicts(feed: Cluster) -> int:
    """409 answers to transitions, summed over the nodes' /metrics."""
    total = 0
    for i in range(3):
        for line in feed.http(i).get("/metrics").text.splitlines():
            if line.startswith("fsm_http_requests_total") and 'status="409"' in line and "transitions" in line:
                total += int(float(line.rsplit(" ", 1)[1]))
    return total


def test_slow_reader_is_cut_off_with_gone_and_old_since_is_410(feed: Cluster) -> None:
    http = feed.http(0)
    ids = [f"s{i}" for i in range(20)]
    creates = [{"machine": "flip", "id": oid, "transition": "create"} for oid in ids]
    assert http.post("/v1/batch", json={"operations": creates}).status == 200
    start = position(http)
    fast = SseReader(feed.urls[1], f"/v1/events?machine=flip&since={start}")
    slow = SseReader(feed.urls[2], f"/v1/events?machine=flip&since={start}", paused=True, rcvbuf=4096)
    pad = "x" * 2500
    try:
        for b in range(12):
            ops = [{"machine": "flip", "id": ids[i % 20], "transition": "touch",
                    "data": {"pad": pad, "b": b, "i": i}} for i in range(300)]
            r = http.post("/v1/batch", json={"operations": ops})
            assert r.status == 200 and all(x["status"] == 200 for x in r.json["results"]), r
        end = position(http)
        fast.wait_for_id(end, timeout=60)
        assert not [m for m in fast.messages if m[0] == "gone"]
        assert len(fast.events()) == 3600
        slow.resume()
        slow.wait_ended(timeout=60)
    finally:
        fast.close()
        slow.close()
    assert slow.messages[-1][0] == "gone", slow.messages[-1]
    assert json.loads(slow.messages[-1][1])["error"]["code"] == "gone"
    prefix = slow.events()
    assert 0 < len(prefix) < 3600 and prefix == fast.events()[: len(prefix)]
    metrics = feed.http(2).get("/metrics").text
    assert "fsm_events_watchers_cut_off_total 1.0" in metrics

    window = http.get("/v1/cluster").json["events"]
    assert window["floor"] > 0 and window["held"] == WINDOW
    r = http.get("/v1/events?since=0")
    assert (r.status, r.error_code) == (410, "gone")
    assert r.json["error"]["details"] == [{"oldest": window["floor"]}]
    stream = SseReader(feed.urls[0], "/v1/events?since=1")
    stream.wait_until(lambda: stream.status is not None)
    stream.close()
    assert stream.status == 410
    with Client(feed.urls, deadline=10) as client, pytest.raises(Gone):
        next(iter(client.watch(since=1)))  # no node holds it: the iterator says so


def test_bad_parameters_are_invalid_requests(feed: Cluster) -> None:
    http = feed.http(1)
    for query in ("since=-1", "since=abc", "since=1.5", "kind=nope", "kind=transition&kind=x"):
        r = http.get(f"/v1/events?{query}")
        assert (r.status, r.error_code) == (400, "invalid_request"), query
    r = http.get("/v1/events", headers={"Last-Event-ID": "x"})
    assert (r.status, r.error_code) == (400, "invalid_request")
    with Client(feed.urls, deadline=30) as client, pytest.raises(InvalidRequest):
        next(iter(client.watch(kind="nope")))  # at once: no node would take it
