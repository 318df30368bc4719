"""`fsmcluster bench cluster|compare`: one command, one run, fsmcluster beside etcd.

Starts the clusters, loads the keys, measures what each costs the box while idle
(`idle_cpu`: a compare's rounds run beside the other system's idle cluster), then for
every workload and client count runs the systems alternately (A B A B ...) for `rounds`
rounds, so a disturbance on this shared box hits both; reports the median of the rounds.
Batch points with at least `probe_from` clients (the overload points) also run
the high-lane probe (probe.py) beside the load.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .loadgen import LoadResult, LoadSpec, process_cpu, run_load
from .probe import ProbeSpec
from .systems import EtcdCluster, FsmCluster, LocalCluster, SystemUnavailable, find_etcd
from .workloads import WorkloadSpec


@dataclass(frozen=True, slots=True)
class Plan:
    systems: tuple[str, ...] = ("fsm", "etcd")
    kinds: tuple[str, ...] = ("cas", "read", "mix", "batch")
    clients: tuple[int, ...] = (1, 16, 64, 256)
    rounds: int = 3
    duration: float = 5.0
    warmup: float = 1.0
    processes: int = 2
    keys: int = 10_000
    node_args: tuple[str, ...] = ()
    probe_clients: int = 2  # high-lane probe clients (0: none) ...
    probe_from: int = 64  # ... beside batch points with at least this many clients

    def probe_for(self, kind: str, clients: int) -> ProbeSpec | None:
        if kind != "batch" or clients < self.probe_from or self.probe_clients <= 0:
            return None
        return ProbeSpec(clients=self.probe_clients)

    @property
    def points(self) -> int:
        return len(self.kinds) * len(self.clients) * self.rounds * len(self.systems)

    def estimate_seconds(self) -> float:
        return self.points * (self.warmup + self.duration + 1.5)


@dataclass
class Measurement:
    system: str
    kind: str
    clients: int
    round: int
    result: LoadResult


@dataclass
class RunReport:
    plan: Plan
    measurements: list[Measurement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    conditions: dict[str, str] = field(default_factory=dict)
    started: str = ""
    seconds: float = 0.0


class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, total: int, stream: object = sys.stderr) -> None:
        self.total = max(1, total)
        self.done = 0
        self.started = time.monotonic()
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def show(self, label: str) -> None:
        fraction = self.done / self.total
        width = 30
        bar = "#" * int(width * fraction) + "-" * (width - int(width * fraction))
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        line = f"[{bar}] {self.done}/{self.total} {label:<34} eta {eta:4.0f}s"
        end = "\r" if self.tty else "\n"
        print(line, end=end, file=self.stream, flush=True)  # type: ignore[call-overload]

    def step(self, label: str) -> None:
        self.done += 1
        self.show(label)

    def finish(self) -> None:
        if self.tty:
            print(file=self.stream)  # type: ignore[call-overload]


def machine_conditions() -> dict[str, str]:
    load = os.getloadavg()
    return {
        "cpus": str(os.cpu_count()),
        "load average (1/5/15 min) at start": f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
        "python": sys.version.split()[0],
        "installed": installed_versions(),
    }


MEASURED_PACKAGES = ("pysyncobj", "aiohttp", "uvloop", "orjson", "msgspec", "google-re2")


def installed_versions() -> str:
    """What the measured nodes run on (the same environment starts them)."""
    from importlib import metadata

    found = []
    for name in MEASURED_PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} absent")
    return ", ".join(found)


def start_systems(plan: Plan, notes: list[str]) -> dict[str, LocalCluster]:
    clusters: dict[str, LocalCluster] = {}
    try:
        for name in plan.systems:
            if name == "fsm":
                cluster: LocalCluster = FsmCluster(plan.node_args)
            else:
                try:
                    cluster = EtcdCluster(find_etcd())
                except SystemUnavailable as exc:
                    notes.append(f"etcd skipped: {exc}")
                    print(f"etcd skipped: {exc}", file=sys.stderr)
                    continue
            clusters[name] = cluster
            cluster.start()
            started = time.monotonic()
            cluster.load(plan.keys, _loading_progress(name, plan.keys))
            if cluster.load_retries:
                notes.append(f"{name}: {cluster.load_retries} load requests retried after 429/503/504")
            print(f"\r{name}: {plan.keys:,} keys loaded in {time.monotonic() - started:.1f} s"
                  + " " * 20, file=sys.stderr, flush=True)
    except BaseException:
        for cluster in clusters.values():
            cluster.stop()
        raise
    return clusters


IDLE_SETTLE, IDLE_SECONDS = 1.0, 3.0


def idle_cpu(clusters: dict[str, LocalCluster], seconds: float = IDLE_SECONDS) -> dict[str, str]:
    """What each loaded cluster costs the box while it waits: during a compare, one system's
    rounds run beside the other's idle cluster (its heartbeats, its tickers)."""
    time.sleep(IDLE_SETTLE)  # the loading's last answers and syncs
    before = {name: sum(process_cpu(c.pids)) for name, c in clusters.items()}
    time.sleep(seconds)
    return {f"{name} cluster idle": f"{100 * (sum(process_cpu(c.pids)) - before[name]) / seconds:.1f} % "
            "of a core" for name, c in clusters.items()}


def _loading_progress(name: str, keys: int) -> Callable[[int], None]:
    def show(done: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{name}: loading keys {done:,}/{keys:,}", end="", file=sys.stderr, flush=True)

    return show


def run(plan: Plan) -> RunReport:
    report = RunReport(plan, conditions=machine_conditions(),
                       started=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    began = time.monotonic()
    clusters = start_systems(plan, report.notes)
    try:
        report.conditions.update(idle_cpu(clusters))
        order = [s for s in plan.systems if s in clusters]
        progress = Progress(len(plan.kinds) * len(plan.clients) * plan.rounds * len(order))
        progress.show("starting")
        for kind in plan.kinds:
            for clients in plan.clients:
                for rnd in range(1, plan.rounds + 1):
                    for system in order:  # A B A B: neighbours in time, same disturbances
                        cluster = clusters[system]
                        # a new key sequence each round (the same for both systems): with
                        # more keys than the drivers learn versions for (100k), repeating
                        # round 1's keys would turn into stale-version conflicts
                        spec = LoadSpec(WorkloadSpec(system, kind, keys=plan.keys, seed=rnd),
                                        cluster.leader_first(), clients, plan.duration, plan.warmup,
                                        plan.processes, probe=plan.probe_for(kind, clients))
                        result = run_load(spec, cluster.pids)
                        report.measurements.append(Measurement(system, kind, clients, rnd, result))
                        progress.step(f"{kind} c={clients} {system} round {rnd}")
        progress.finish()
    finally:
        for cluster in clusters.values():
            cluster.stop()
    end_load = os.getloadavg()
    report.conditions["load average (1/5/15 min) at end"] = (
        f"{end_load[0]:.2f} / {end_load[1]:.2f} / {end_load[2]:.2f}")
    report.seconds = time.monotonic() - began
    return report


def parse_list(text: str, allowed: Sequence[str] | None = None) -> tuple[str, ...]:
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    if allowed is not None:
        bad = [x for x in items if x not in allowed]
        if bad:
            raise ValueError(f"unknown {', '.join(bad)} (choose from {', '.join(allowed)})")
    return items
