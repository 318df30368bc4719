"""A `Cluster` whose nodes can start with Raft-only `--peer` or with `--join URL`
(issue 15), and a background write load for membership and restart tests."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.cluster.harness import Cluster, Http
from tests.faults.test_failover import Workload, rotations, setup_objects


@dataclass
class OpsCluster(Cluster):
    """Nodes `0..initial-1` form the cluster (Raft-only `--peer`); node i in `joins`
    starts with `--join <URL of node joins[i]>` and no `--peer`."""

    initial: int = 3
    joins: dict[int, int] = field(default_factory=dict)

    def command(self, i: int) -> list[str]:
        node = self.nodes[i]
        cmd = [*self.base_command(i)]
        if i in self.joins:
            cmd += ["--join", self.nodes[self.joins[i]].url]
        else:
            cmd += [arg for other in self.nodes[: self.initial] if other.index != i
                    for arg in ("--peer", other.raft)]
        if node.bind_port is not None:
            cmd += ["--raft-bind", f"127.0.0.1:{node.bind_port}"]
        return cmd + list(self.extra_args)

    def __enter__(self) -> OpsCluster:
        return self  # started by start_initial(); stopped on exit

    def base_command(self, i: int) -> list[str]:
        return super().command(i)[:10]  # python -m cluster node --raft R --http H --data-dir D

    def start_initial(self) -> OpsCluster:
        for i in range(self.initial):
            self.spawn(i)
        self.wait_ready(range(self.initial))
        return self

    def status(self, i: int) -> dict[str, Any]:
        r = Http(self.nodes[i].url, timeout=5.0).get("/v1/cluster")
        assert r.status == 200, r
        return r.json  # type: ignore[no-any-return]

    def wait_members(self, indexes: list[int], expected: set[int], timeout: float = 30.0) -> None:
        """Every node in `indexes` lists exactly `expected` as members, each with its http."""
        want = {(self.nodes[j].raft, self.nodes[j].http) for j in expected}
        deadline = time.monotonic() + timeout
        while True:
            seen = {}
            for i in indexes:
                try:
                    seen[i] = {(m["raft"], m["http"]) for m in self.status(i)["members"]}
                except (OSError, AssertionError):
                    seen[i] = None
            if all(v == want for v in seen.values()):
                return
            assert time.monotonic() < deadline, f"members not {sorted(want)} after {timeout}s: {seen}"
            time.sleep(0.2)


class StopAt:
    """A deadline the writers compare `time.monotonic() < stop_at` against, that
    `stop()` can also end early (float < StopAt falls back to StopAt.__gt__)."""

    def __init__(self, seconds: float) -> None:
        self.limit = time.monotonic() + seconds
        self.stopped = threading.Event()

    def __gt__(self, now: float) -> bool:
        return not self.stopped.is_set() and now < self.limit

    def stop(self) -> None:
        self.stopped.set()


class Load:
    """test_failover's CAS writers (history + acknowledged tokens), run in a thread
    until `seconds` pass or `join()` is called after `stop()`."""

    def __init__(self, cluster: Cluster, writers: int = 3) -> None:
        self.work: Workload = setup_objects(cluster, writers)
        self.urls = cluster.urls
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.stop_at = StopAt(0)

    def start(self, seconds: float) -> Load:
        self.stop_at = StopAt(seconds)
        work, urls = self.work, rotations(self.urls, len(self.work.objects))

        async def writers() -> None:
            await asyncio.gather(*(work.writer(f"w{i}", u, oid, self.stop_at)  # type: ignore[arg-type]
                                   for i, (u, oid) in enumerate(zip(urls, work.objects, strict=True))))

        def run() -> None:
            try:
                asyncio.run(writers())
            except BaseException as exc:  # reported by join()
                self.error = exc

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def stop(self, after: float = 1.0) -> None:
        """End the load `after` seconds from now (writes keep going meanwhile)."""
        time.sleep(after)
        self.stop_at.stop()

    def join(self, timeout: float = 120.0) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the write load did not stop"
        if self.error is not None:
            raise self.error

    @property
    def acked(self) -> int:
        return sum(len(v) for v in self.work.acked.values())

    def indeterminate_writes(self) -> int:
        return sum(1 for op in self.work.history.operations() if op.indeterminate and op.kind != "read")

    def longest_gap(self) -> float:
        """The longest time any writer went without an acknowledged write."""
        gaps = [b - a for times in self.work.ack_times.values() for a, b in zip(times, times[1:], strict=False)]
        return max(gaps, default=0.0)
