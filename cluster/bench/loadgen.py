"""Closed-loop load generator spread over several processes.

C clients, each with its own keep-alive connection, send one request, wait for
the answer, send the next. Clients are dealt round-robin to the target URLs
and to P generator processes (so the generator is not bound to one GIL), each
running an asyncio loop (uvloop when installed). Every run is bounded: warmup +
duration, plus at most one request timeout. Each process reports its own CPU
time over the measured window, so the report can show whether the generator
was the bottleneck. With `probe` set, one more process runs the high-lane probe
(probe.py) beside the load, over the same window.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

from .httpwire import HttpConnection
from .probe import ProbeSpec, drive_probe
from .workloads import CONFLICT, ERROR, OK, WorkloadSpec, make_driver

REFUSED = "refused"
RETRY_AFTER = 1.0

START_SLACK = 0.2  # seconds between "go" and the first request, so all processes start together


@dataclass(frozen=True, slots=True)
class LoadSpec:
    workload: WorkloadSpec
    urls: tuple[str, ...]
    concurrency: int
    duration: float = 5.0
    warmup: float = 1.0
    processes: int = 2
    request_timeout: float = 10.0
    probe: ProbeSpec | None = None  # the high-lane probe beside the load (probe.py)


@dataclass
class LoadResult:
    concurrency: int
    seconds: float
    server_cpu_pct: list[float] = field(default_factory=list)  # per watched process, of one core
    machine_pct: dict[str, float] = field(default_factory=dict)  # machine_split, over the point
    operations: int = 0  # committed transitions or reads (a batch counts its transitions)
    requests: int = 0
    conflicts: int = 0
    errors: int = 0
    refused: int = 0  # 429 overloaded: the client waits its Retry-After (1 s) and goes on
    generator_cpu_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    first_error: str | None = None
    probe_ok: int = 0  # the high-lane probe's answered requests (probe.py), if it ran
    probe_refused: int = 0
    probe_errors: int = 0
    probe_latencies_ms: list[float] = field(default_factory=list, repr=False)
    probe_follower_latencies_ms: list[float] = field(default_factory=list, repr=False)
    probe_first_error: str | None = None

    @property
    def machine_busy_pct(self) -> float:
        """Of 100 x cores: the machine's time but idle and disk waits (`machine_pct`)."""
        split = self.machine_pct
        return round(sum(split.values()) - split.get("idle", 0.0) - split.get("iowait", 0.0), 1)

    @property
    def ops_per_s(self) -> float:
        return self.operations / self.seconds if self.seconds else 0.0

    @property
    def generator_cpu_pct(self) -> float:
        return 100.0 * self.generator_cpu_seconds / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float | None:
        lat = self.latencies_ms
        if not lat:
            return None
        return lat[min(len(lat) - 1, int(q / 100.0 * len(lat)))]

    def probe_percentile(self, q: float, via_follower: bool = False) -> float | None:
        lat = self.probe_follower_latencies_ms if via_follower else self.probe_latencies_ms
        return lat[min(len(lat) - 1, int(q / 100.0 * len(lat)))] if lat else None

    def merge_probe(self, part: dict[str, Any]) -> None:
        self.probe_ok += part["probe_ok"]
        self.probe_refused += part["probe_refused"]
        self.probe_errors += part["probe_errors"]
        self.probe_latencies_ms = sorted(self.probe_latencies_ms + part["probe_latencies"])
        self.probe_follower_latencies_ms = sorted(self.probe_follower_latencies_ms
                                                  + part["probe_follower_latencies"])
        self.probe_first_error = self.probe_first_error or part["probe_first_error"]

    def merge(self, part: dict[str, Any]) -> None:
        self.operations += part["operations"]
        self.requests += part["requests"]
        self.conflicts += part["conflicts"]
        self.errors += part["errors"]
        self.refused += part.get("refused", 0)
        self.generator_cpu_seconds += part["cpu"]
        self.latencies_ms.extend(part["latencies"])
        self.first_error = self.first_error or part["first_error"]


def run_load(spec: LoadSpec, watch_pids: Sequence[int] = ()) -> LoadResult:
    """Run one load point and return the merged result of every generator process.

    The CPU of `watch_pids` (the servers) and of the whole machine is sampled
    over the measured window.
    """
    processes = max(1, min(spec.processes, spec.concurrency))
    ctx = mp.get_context("spawn")  # no inherited threads or event loops
    pipes: list[Connection] = []
    children = []
    for index in range(processes):
        parent_end, child_end = ctx.Pipe()
        child = ctx.Process(target=_child, args=(spec, index, processes, child_end), daemon=True)
        child.start()
        pipes.append(parent_end)
        children.append(child)
    if spec.probe is not None and spec.probe.clients > 0:  # the last pipe: the probe's
        parent_end, child_end = ctx.Pipe()
        child = ctx.Process(target=_child, args=(spec, -1, processes, child_end), daemon=True)
        child.start()
        pipes.append(parent_end)
        children.append(child)
    try:
        for pipe in pipes:  # each process has connected and learnt its keys
            if not pipe.poll(60.0):
                raise RuntimeError("a load generator process did not get ready within 60 s")
            ready = pipe.recv()
            if ready != "ready":
                raise RuntimeError(f"load generator failed to start: {ready}")
        start_at = time.monotonic() + START_SLACK
        for pipe in pipes:
            pipe.send(start_at)
        result = LoadResult(spec.concurrency, spec.duration)
        time.sleep(max(0.0, start_at + spec.warmup - time.monotonic()))
        before = (process_cpu(watch_pids), machine_cpu(), time.monotonic())
        time.sleep(max(0.0, start_at + spec.warmup + spec.duration - time.monotonic()))
        after = (process_cpu(watch_pids), machine_cpu(), time.monotonic())
        wall = after[2] - before[2]
        result.server_cpu_pct = [round(100.0 * (b - a) / wall, 1) for a, b in zip(before[0], after[0], strict=True)]
        result.machine_pct = machine_split(before[1], after[1])
        budget = START_SLACK + spec.warmup + spec.duration + spec.request_timeout + 30.0
        for pipe in pipes:
            if not pipe.poll(budget):
                raise RuntimeError("a load generator process did not report in time")
            part = pipe.recv()
            if not isinstance(part, dict):
                raise RuntimeError(f"a load generator process failed: {part}")
            (result.merge_probe if "probe_ok" in part else result.merge)(part)
        result.latencies_ms.sort()
        return result
    finally:
        for child in children:
            child.join(5.0)
            if child.is_alive():
                child.kill()
                child.join(1.0)


def _child(spec: LoadSpec, index: int, processes: int, pipe: Connection) -> None:
    try:
        import uvloop  # type: ignore[import-not-found]

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        pipe.send(runner(_drive_probe(spec, pipe) if index < 0 else _drive(spec, index, processes, pipe)))
    except Exception as exc:  # reported to the parent, which stops the run
        pipe.send(f"{type(exc).__name__}: {exc}")


async def _drive_probe(spec: LoadSpec, pipe: Connection) -> dict[str, Any]:
    assert spec.probe is not None
    pipe.send("ready")
    start_at = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    t_measure = start_at + spec.warmup
    return await drive_probe(spec.workload.system, spec.probe, spec.urls, start_at, t_measure,
                             t_measure + spec.duration, spec.request_timeout)


async def _drive(spec: LoadSpec, index: int, processes: int, pipe: Connection) -> dict[str, Any]:
    driver = make_driver(spec.workload, index, processes)
    mine = [w for w in range(spec.concurrency) if w % processes == index]
    targets = [urlsplit(spec.urls[w % len(spec.urls)]) for w in mine]
    conns = [await HttpConnection.open(t.hostname or "127.0.0.1", t.port or 80) for t in targets]
    for raw in driver.prepare_requests():
        driver.prepared(*await conns[0].request(raw, spec.request_timeout))
    pipe.send("ready")
    loop = asyncio.get_running_loop()
    start_at = await loop.run_in_executor(None, pipe.recv)
    t_measure = start_at + spec.warmup
    t_end = t_measure + spec.duration
    counts = {OK: 0, CONFLICT: 0, ERROR: 0, REFUSED: 0}
    totals = {"operations": 0}
    latencies: list[float] = []
    first_error: list[str] = []
    cpu: dict[str, float] = {}

    async def sample_cpu() -> None:
        await asyncio.sleep(max(0.0, t_measure - time.monotonic()))
        cpu["start"] = time.process_time()
        await asyncio.sleep(max(0.0, t_end - time.monotonic()))
        cpu["end"] = time.process_time()

    async def client(conn: HttpConnection, target: Any) -> None:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        clock = time.monotonic
        while (t0 := clock()) < t_end:
            raw, context = driver.next_request()
            try:
                if conn.closed:  # the server closed it (e.g. a restart): reconnect
                    conn = await HttpConnection.open(target.hostname, target.port)
                    conns.append(conn)
                status, body = await conn.request(raw, spec.request_timeout)
                outcome, ops = driver.record(context, status, body)
                if status == 429:  # admission control: back off as told (SPEC 4.9)
                    outcome, ops = REFUSED, 0
                    await asyncio.sleep(RETRY_AFTER)
                if outcome == ERROR and not first_error:
                    first_error.append(f"{status} {body[:300]!r}")
            except (OSError, TimeoutError, ValueError, KeyError) as exc:
                outcome, ops = ERROR, 0
                if not first_error:
                    first_error.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.01)
            t1 = clock()
            if t_measure <= t0 and t1 <= t_end:
                counts[outcome] += 1
                totals["operations"] += ops
                if outcome in (OK, CONFLICT):
                    latencies.append((t1 - t0) * 1000.0)

    await asyncio.gather(sample_cpu(), *(client(c, t) for c, t in zip(conns, targets, strict=True)))
    for conn in conns:
        conn.close()
    return {
        "operations": totals["operations"],
        "requests": counts[OK] + counts[CONFLICT],
        "conflicts": counts[CONFLICT],
        "errors": counts[ERROR],
        "refused": counts[REFUSED],
        "cpu": cpu.get("end", 0.0) - cpu.get("start", 0.0),
        "latencies": latencies,
        "first_error": first_error[0] if first_error else None,
    }


def process_cpu(pids: Sequence[int]) -> list[float]:
    """CPU seconds (user + system) used so far by each process (0 when it is gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out.append((int(fields[11]) + int(fields[12])) / tick)
        except (OSError, IndexError, ValueError):
            out.append(0.0)
    return out


# the first fields of /proc/stat's "cpu" line, in jiffies of all cores together
MACHINE_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def machine_cpu() -> tuple[int, ...]:
    """The whole machine's jiffies so far, one per `MACHINE_FIELDS`, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            values = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return (0,) * len(MACHINE_FIELDS)
    return tuple((values + [0] * len(MACHINE_FIELDS))[:len(MACHINE_FIELDS)])


def machine_split(before: tuple[int, ...], after: tuple[int, ...]) -> dict[str, float]:
    """Where the machine's time went between two `machine_cpu()` samples, each field in %
    of one core (so the fields add up to 100 x cores): a point that leaves a core partly
    idle shows it in `idle` (nothing to run) or `iowait` (nothing to run but a disk wait)."""
    spent = [b - a for a, b in zip(before, after, strict=True)]
    total = max(1, sum(spent))
    cores = os.cpu_count() or 1
    return {name: round(100.0 * cores * part / total, 1) for name, part in zip(MACHINE_FIELDS, spent, strict=True)}
