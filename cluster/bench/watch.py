"""`fsmcluster bench watch`: commit-to-watcher latency and fan-out, fsmcluster beside etcd.

The same writers and the same watcher client drive both systems, one point after the
other, on local 3-node clusters (`systems.py`):

- writers: C closed-loop asyncio workers in this process; worker w writes to node w % 3
  a 64-byte value that starts with `time.time_ns()` at send (fsmcluster: the `put`
  transition of the `register` machine; etcd: `PUT /v3/kv/put`), keys drawn uniformly;
- watchers: W streams in separate processes (one for W <= 100, else two); watcher j reads
  node j % 3. `fanout`: every watcher follows every key (fsmcluster `GET /v1/events?
  machine=register` as SSE; etcd `POST /v3/watch` on the key prefix). `waiters`: W keys,
  watcher j follows key j only (`object=` / a single-key watch), writers write those keys.

Latency of an event = time the watcher process read the chunk holding it - the send time
in the value, for writes sent inside the measured window, over every (write, watcher)
pair. events/s counts events read inside the window. Each watcher checks its stream per
key: a version that skips is `missed`, one that does not grow is `duplicated`; after the
writers stop, watchers get `drain` seconds to reach the acknowledged writes.
"""

from __future__ import annotations

import asyncio
import base64
import multiprocessing as mp
import random
import statistics
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import orjson

from .systems import LocalCluster
from .workloads import MACHINE, key_name

VALUE_PAD = 64 - 19


@dataclass(frozen=True, slots=True)
class Point:
    system: str  # fsm | etcd
    mode: str  # fanout | waiters
    watchers: int
    writers: int = 64
    duration: float = 10.0
    warmup: float = 2.0
    drain: float = 30.0
    keys: int = 10_000

    @property
    def key_count(self) -> int:
        return self.watchers if self.mode == "waiters" else self.keys


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# ---- watchers (separate processes) --------------------------------------------------

class Stream:
    """One watcher: its per-key continuity check and its latency samples."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.received = self.missed = self.duplicated = self.in_window = 0
        self.ready = asyncio.Event()

    def seen(self, key: str, version: int, sent_ns: int, at_ns: int, window: tuple[int, int],
             latencies: array) -> None:
        last = self.versions.get(key)
        if last is not None:
            if version <= last:
                self.duplicated += 1
                return
            self.missed += version - last - 1
        self.versions[key] = version
        self.received += 1
        if window[0] <= at_ns <= window[1]:
            self.in_window += 1
        if window[0] <= sent_ns <= window[1]:
            latencies.append((at_ns - sent_ns) // 1000)


async def follow(system: str, url: str, key: str | None, stream: Stream, window: list[tuple[int, int]],
                 latencies: array) -> None:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        if system == "fsm":
            query = f"machine={MACHINE}" + (f"&object={key}" if key else "")
            request = session.get(f"{url}/v1/events?{query}", headers={"Accept": "text/event-stream"})
        else:
            watch: dict[str, Any] = {"key": b64(key or "k")}
            if key is None:
                watch["range_end"] = b64("l")
            request = session.post(f"{url}/v3/watch", json={"create_request": watch})
        async with request as resp:
            buffer = b""
            async for chunk in resp.content.iter_any():
                at = time.time_ns()
                stream.ready.set()
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    parse(system, line, stream, at, window[0], latencies)


def parse(system: str, line: bytes, stream: Stream, at: int, window: tuple[int, int],
          latencies: array) -> None:
    if system == "fsm":
        if line.startswith(b"data: "):
            event = orjson.loads(line[6:])
            if event.get("kind") == "transition":
                value = event["data"]["value"]
                stream.seen(event["object"], event["version"], int(value[:19]), at, window, latencies)
        return
    if not line.strip():
        return
    result = orjson.loads(line).get("result", {})
    for event in result.get("events", ()):
        kv = event["kv"]
        value = base64.b64decode(kv["value"]).decode()
        stream.seen(kv["key"], int(kv["version"]), int(value[:19]), at, window, latencies)


def watcher_process(system: str, urls: Sequence[str], keys: Sequence[str | None], first: int,
                    pipe: Connection) -> None:
    asyncio.run(_watchers(system, urls, keys, first, pipe))


async def _watchers(system: str, urls: Sequence[str], keys: Sequence[str | None], first: int,
                    pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    streams = [Stream() for _ in keys]
    window: list[tuple[int, int]] = [(0, 0)]
    latencies = array("q")
    tasks = [loop.create_task(follow(system, urls[(first + i) % len(urls)], key, s, window, latencies))
             for i, (key, s) in enumerate(zip(keys, streams, strict=True))]
    await asyncio.sleep(1.0)  # fsm sends its start id at once; etcd its `created` line
    await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in streams)), 60)
    pipe.send("ready")
    window[0] = await loop.run_in_executor(None, pipe.recv)
    expected: dict[str, int] = await loop.run_in_executor(None, pipe.recv)
    drain_end = time.monotonic() + float(expected.pop("__drain__"))
    want = [sum(expected.values()) if k is None else expected.get(k, 0) for k in keys]
    while time.monotonic() < drain_end and any(s.received < w for s, w in zip(streams, want, strict=True)):
        await asyncio.sleep(0.05)
    drained_at = time.monotonic()
    for task in tasks:
        task.cancel()
    pipe.send({
        "received": sum(s.received for s in streams), "in_window": sum(s.in_window for s in streams),
        "missed": sum(s.missed for s in streams), "duplicated": sum(s.duplicated for s in streams),
        "undelivered": sum(max(0, w - s.received) for s, w in zip(streams, want, strict=True)),
        "drain_left": drain_end - drained_at, "latencies_us": latencies.tobytes(),
    })


# ---- writers (this process) ---------------------------------------------------------

async def write_load(point: Point, urls: Sequence[str], window: tuple[int, int]) -> dict[str, Any]:
    acked: dict[str, int] = {}
    latencies: list[float] = []
    in_window = 0
    end_ns = window[1]
    rng = random.Random(7)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(w: int) -> None:
            nonlocal in_window
            url = urls[w % len(urls)]
            while (sent := time.time_ns()) < end_ns:
                key = key_name(rng.randrange(point.key_count))
                value = f"{sent}{'x' * VALUE_PAD}"
                if point.system == "fsm":
                    request = session.post(f"{url}/v1/machines/{MACHINE}/objects/{key}/transitions/put",
                                           json={"data": {"value": value}})
                else:
                    request = session.post(f"{url}/v3/kv/put", json={"key": b64(key), "value": b64(value)})
                async with request as resp:
                    await resp.read()
                    ok = resp.status == 200
                done = time.time_ns()
                if ok:
                    acked[key] = acked.get(key, 0) + 1
                    if window[0] <= sent and done <= window[1]:
                        in_window += 1
                        latencies.append((done - sent) / 1e6)

        await asyncio.gather(*(worker(w) for w in range(point.writers)))
    return {"acked": acked, "in_window": in_window, "latencies": latencies}


def run_point(point: Point, cluster: LocalCluster) -> dict[str, Any]:
    """One point: watchers connect, writers run warmup + duration, watchers drain."""
    keys: list[str | None] = (
        [key_name(j) for j in range(point.watchers)] if point.mode == "waiters" else [None] * point.watchers
    )
    parts = 0 if point.watchers == 0 else 1 if point.watchers <= 100 else 2
    ctx = mp.get_context("spawn")
    procs, pipes = [], []
    for p in range(parts):
        mine = keys[p::parts]
        here, there = ctx.Pipe()
        proc = ctx.Process(target=watcher_process, args=(point.system, cluster.urls, mine, p, there),
                           daemon=True)
        proc.start()
        procs.append(proc)
        pipes.append(here)
    try:
        for pipe in pipes:
            if not pipe.poll(120) or pipe.recv() != "ready":
                raise RuntimeError("watchers did not connect")
        start = time.time_ns() + 200_000_000
        window = (start + int(point.warmup * 1e9), start + int((point.warmup + point.duration) * 1e9))
        for pipe in pipes:
            pipe.send(window)
        time.sleep(max(0.0, (start - time.time_ns()) / 1e9))
        writes = asyncio.run(write_load(point, cluster.urls, window))
        for pipe in pipes:
            pipe.send({**writes["acked"], "__drain__": point.drain})
        results = [pipe.recv() for pipe in pipes]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    return summarize(point, writes, results)


def summarize(point: Point, writes: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    lat = array("q")
    for r in results:
        lat.frombytes(r["latencies_us"])
    ordered = sorted(lat)

    def pct(q: float) -> float | None:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000 if ordered else None

    wl = sorted(writes["latencies"])
    return {
        "system": point.system, "mode": point.mode, "watchers": point.watchers, "writers": point.writers,
        "writes_per_s": writes["in_window"] / point.duration,
        "write_p50_ms": statistics.median(wl) if wl else None,
        "write_p99_ms": wl[int(0.99 * len(wl))] if wl else None,
        "events_per_s": sum(r["in_window"] for r in results) / point.duration,
        "latency_p50_ms": pct(0.50), "latency_p99_ms": pct(0.99), "latency_p999_ms": pct(0.999),
        "missed": sum(r["missed"] for r in results), "duplicated": sum(r["duplicated"] for r in results),
        "undelivered": sum(r["undelivered"] for r in results),
        "drain_s": point.drain - min((r["drain_left"] for r in results), default=point.drain),
    }


POINTS = (("fanout", 0), ("fanout", 1), ("fanout", 100), ("fanout", 1000), ("waiters", 1000))


def main(systems: Sequence[str], points: Sequence[tuple[str, int]], writers: int, duration: float,
         warmup: float, json_out: str | None) -> int:
    """Every point on a fresh-loaded cluster of each system in turn; one table at the end."""
    from .systems import EtcdCluster, FsmCluster, SystemUnavailable, find_etcd

    rows: list[dict[str, Any]] = []
    for system in systems:
        try:
            cluster: LocalCluster = FsmCluster() if system == "fsm" else EtcdCluster(find_etcd())
            cluster.start()
        except SystemUnavailable as exc:
            print(f"skipping {system}: {exc}", flush=True)
            continue
        try:
            cluster.load(10_000)
            for mode, watchers in points:
                point = Point(system, mode, watchers, writers, duration, warmup)
                row = run_point(point, cluster)
                rows.append(row)
                print(format_row(row), flush=True)
                time.sleep(1.0)
        finally:
            cluster.stop()
    if json_out:
        with open(json_out, "ab") as f:
            for row in rows:
                f.write(orjson.dumps(row) + b"\n")
    print("\n" + table(rows))
    return 0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def format_row(r: dict[str, Any]) -> str:
    return (f"{r['system']:4} {r['mode']:7} W={r['watchers']:<5} writes/s {r['writes_per_s']:8,.0f}  "
            f"events/s {r['events_per_s']:9,.0f}  latency p50/p99 {_ms(r['latency_p50_ms'])} / "
            f"{_ms(r['latency_p99_ms'])} ms  missed/dup/undelivered {r['missed']}/{r['duplicated']}/"
            f"{r['undelivered']}  drain {r['drain_s']:.1f}s")


def table(rows: Sequence[dict[str, Any]]) -> str:
    head = ("| system | workload | W | writes/s | write p50 / p99 ms | events/s | commit-to-watcher "
            "p50 / p99 / p999 ms | missed / dup / undelivered | drain s |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['system']} | {r['mode']} | {r['watchers']} | {r['writes_per_s']:,.0f} | "
            f"{_ms(r['write_p50_ms'])} / {_ms(r['write_p99_ms'])} | {r['events_per_s']:,.0f} | "
            f"{_ms(r['latency_p50_ms'])} / {_ms(r['latency_p99_ms'])} / {_ms(r['latency_p999_ms'])} | "
            f"{r['missed']} / {r['duplicated']} / {r['undelivered']} | {r['drain_s']:.1f} |")
    return "\n".join(lines)
