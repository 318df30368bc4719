"""The nemesis: faults injected into a running test cluster, and their healing.

    cluster = Cluster(tmp_path, n=3, raft_bind=True)
    with Nemesis.around(cluster) as nemesis:     # proxies up, then the nodes
        nemesis.kill(0); nemesis.restart(0)      # kill -9 and start again (same data dir)
        nemesis.pause(1); nemesis.resume(1)      # SIGSTOP / SIGCONT
        nemesis.isolate(nemesis.leader())        # the leader alone in a minority
        nemesis.heal()                           # every fault undone
        nemesis.run(stop, kinds=("kill", "pause", "partition"))  # a random schedule
        Nemesis(cluster, disk=disk).power_cut()  # data dirs on powercut_fs: kill -9 all, drop unsynced data

Faults hit at most a minority (one node of three) at a time, so the majority
can always make progress; each fault is held for a few seconds and healed
before the next. `faults` counts what was injected, `events` says when.
Partitions need the `Network` proxies (`Cluster(raft_bind=True)`), kills and
pauses work on any cluster. Processes are signalled only through the harness,
by the PID it started.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence

from tests.cluster.harness import Cluster
from tests.faults.powercut import Disk, cut_power
from tests.faults.proxy import Network

KINDS = ("kill", "pause", "partition", "partition-leader")
POWER_CUT = "power-cut"  # every node at once; needs the data dirs on a powercut_fs Disk


class Nemesis:
    def __init__(self, cluster: Cluster, network: Network | None = None, seed: int | None = None,
                 disk: Disk | None = None) -> None:
        self.cluster = cluster
        self.network = network
        self.disk = disk
        self.rng = random.Random(seed)
        self.faults: Counter[str] = Counter()
        self.events: list[tuple[float, str]] = []
        self._killed: set[int] = set()
        self._paused: set[int] = set()
        self._lock = threading.Lock()
        self._started = time.monotonic()

    @classmethod
    @contextlib.contextmanager
    def around(cls, cluster: Cluster, seed: int | None = None, start: bool = True,
               disk: Disk | None = None) -> Iterator[Nemesis]:
        """Proxies (when the cluster binds Raft behind them) and the nodes; all stopped after."""
        network = None
        if cluster.nodes and cluster.nodes[0].bind_port is not None:
            network = Network({n.index: (n.raft_port, n.bind_port) for n in cluster.nodes})  # type: ignore[misc]
            network.start()
        try:
            if start:
                cluster.start()
            yield cls(cluster, network, seed, disk)
        finally:
            cluster.stop()
            if network is not None:
                network.stop()

    # -- single faults ---------------------------------------------------------

    def kill(self, i: int) -> None:
        self._note("kill", f"kill -9 node {i}")
        self.cluster.kill(i)
        self._killed.add(i)

    def restart(self, i: int, wait: bool = True) -> None:
        self._note(None, f"restart node {i}")
        self.cluster.restart(i, wait=False)
        self._killed.discard(i)
        if wait:
            self.cluster.wait_ready([i])

    def pause(self, i: int) -> None:
        self._note("pause", f"SIGSTOP node {i}")
        self.cluster.pause(i)
        self._paused.add(i)

    def resume(self, i: int) -> None:
        self._note(None, f"SIGCONT node {i}")
        self.cluster.resume(i)
        self._paused.discard(i)

    def power_cut(self) -> None:
        """kill -9 every node at once and drop what they had not synced; `heal` restarts them."""
        if self.disk is None:
            raise RuntimeError("a power cut needs the data dirs on a powercut_fs Disk (Nemesis(disk=...))")
        self._note(POWER_CUT, "power cut: kill -9 every node, drop unsynced data")
        cut_power(self.cluster, self.disk)
        self._paused.clear()
        self._killed.update(range(self.cluster.n))

    def partition(self, groups: Sequence[set[int]]) -> None:
        self._note("partition", f"partition {' | '.join(str(sorted(g)) for g in groups)}")
        self._require_network().partition(groups)

    def isolate(self, i: int) -> None:
        others = set(range(self.cluster.n)) - {i}
        self.partition([{i}, others])

    def heal(self, wait: bool = True) -> None:
        """Undo every fault: resume paused nodes, restart killed ones, reconnect the network."""
        for i in sorted(self._paused):
            self.resume(i)
        for i in sorted(self._killed):
            self.restart(i, wait=False)
        if self.network is not None and self.network.partitioned:
            self._note(None, "heal network")
            self.network.heal()
        if wait:
            self.cluster.wait_ready()

    def leader(self, among: Sequence[int] | None = None) -> int:
        return self.cluster.leader_index(among=among)

    @property
    def total(self) -> int:
        return sum(self.faults.values())

    # -- a random schedule -----------------------------------------------------

    def run(
        self,
        stop: threading.Event,
        kinds: Sequence[str] = KINDS,
        hold: tuple[float, float] = (2.0, 6.0),
        gap: tuple[float, float] = (2.0, 5.0),
    ) -> None:
        """Inject one random fault at a time until `stop` is set; heal before returning."""
        if self.network is None:
            kinds = [k for k in kinds if not k.startswith("partition")]
        if self.disk is None:
            kinds = [k for k in kinds if k != POWER_CUT]
        try:
            while not stop.wait(self.rng.uniform(*gap)):
                self.inject_random(kinds)
                stop.wait(self.rng.uniform(*hold))
                self.heal(wait=False)
                self._wait_recovered(stop)
        finally:
            self.heal(wait=False)

    def inject_random(self, kinds: Sequence[str]) -> None:
        kind = self.rng.choice(list(kinds))
        target = self._target(leader=kind == "partition-leader" or self.rng.random() < 0.5)
        if kind == POWER_CUT:
            self.power_cut()
        elif kind == "kill":
            self.kill(target)
        elif kind == "pause":
            self.pause(target)
        else:
            self.isolate(target)

    def _target(self, leader: bool) -> int:
        if leader:
            with contextlib.suppress(TimeoutError):
                return self.cluster.leader_index(timeout=5.0)
        return self.rng.randrange(self.cluster.n)

    def _wait_recovered(self, stop: threading.Event) -> None:
        """Let the healed node rejoin before the next fault, so faults never overlap."""
        with contextlib.suppress(TimeoutError, RuntimeError):
            self.cluster.wait_ready(timeout=60.0)

    # -- bookkeeping -----------------------------------------------------------

    def _note(self, kind: str | None, text: str) -> None:
        with self._lock:
            if kind is not None:
                self.faults[kind] += 1
            self.events.append((time.monotonic() - self._started, text))

    def _require_network(self) -> Network:
        if self.network is None:
            raise RuntimeError("partitions need Cluster(raft_bind=True) and Nemesis.around(...)")
        return self.network

    def describe(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"

    def timeline(self) -> str:
        return "\n".join(f"  {at:7.2f}s  {text}" for at, text in self.events)
