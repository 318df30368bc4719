"""Redis trouble never stops writes (SPEC 6): kill Redis during a stream of writes, pause it
(slow Redis), and bring it back; no write fails because of it, status says so, and the next
snapshot lands once Redis answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cluster.storage.base import latest_valid
from cluster.storage.redis import RedisStore, connect
from tests.cluster.conftest import lock_source
from tests.cluster.harness import Cluster, Http
from tests.redis_server import RedisServer

pytestmark = pytest.mark.cluster
M = "/v1/machines/lock"


class Writer(threading.Thread):
    """Creates objects one after another through one node and remembers every failure."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.http = Http(url, timeout=10)
        self.done = threading.Event()
        self.written = 0
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.done.is_set():
            r = self.http.post(f"{M}/objects/r-{self.written:06d}/transitions/create")
            if r.status == 201:
                self.written += 1
            else:
                self.failures.append(repr(r))
        self.http.close()

    def stop(self) -> None:
        self.done.set()
        self.join(30)


@pytest.fixture
def start_cluster(tmp_path: Path) -> Iterator[Callable[[list[str]], Cluster]]:
    started: list[Cluster] = []

    def start(extra_args: list[str]) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(started)}", n=3, extra_args=extra_args)
        started.append(cluster)
        return cluster.start()

    try:
        yield start
    finally:
        for cluster in started:
            cluster.stop()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_writes_continue_while_redis_is_down_and_snapshots_resume(
    start_cluster: Callable[[list[str]], Cluster], redis_server: RedisServer
) -> None:
    cluster = start_cluster(["--redis", redis_server.url, "--cluster-id", "rd",
                                          "--log-compaction-entries", "300", "--log-compaction-bytes", "0",
                                          "--leader-compaction-factor", "1"])
    leader = cluster.leader_index()
    http = cluster.http(leader)
    assert http.put(M, body=lock_source(), content_type="application/yaml").status == 201
    writer = Writer(cluster.nodes[leader].url)
    writer.start()
    try:
        wait_until(lambda: writer.written >= 200, 60, "writes before the outage")
        assert http.post("/v1/cluster/snapshot").json["ok"]

        redis_server.kill()
        before = writer.written
        down = http.post("/v1/cluster/snapshot?timeout=10")
        assert down.status == 500 and down.json["ok"] is False and down.json["error"], down
        status = http.get("/v1/cluster").json["snapshot"]
        assert status["store"] == "redis" and status["ok"] is False
        assert "fsm_snapshot_ok 0.0" in http.get("/metrics").text
        wait_until(lambda: writer.written >= before + 400, 60, "writes during the outage")

        redis_server.start()  # empty: no persistence in the test server
        wait_until(lambda: http.get("/v1/cluster").json["snapshot"]["ok"], 60, "the store to recover")
        up = http.post("/v1/cluster/snapshot?timeout=20")
        assert up.status == 200 and up.json["ok"], up
        found = latest_valid(RedisStore(connect(redis_server.url), "rd"))
        assert found is not None and found[0].index >= up.json["last_index"] - 1
    finally:
        writer.stop()
    assert writer.failures == [], writer.failures[:5]
    assert writer.written > 600


def test_a_stalled_redis_does_not_slow_writes_down(
    start_cluster: Callable[[list[str]], Cluster], redis_server: RedisServer
) -> None:
    cluster = start_cluster(["--redis", redis_server.url, "--cluster-id", "rs",
                                          "--log-compaction-entries", "200", "--log-compaction-bytes", "0",
                                          "--leader-compaction-factor", "1"])
    leader = cluster.leader_index()
    http = cluster.http(leader)
    assert http.put(M, body=lock_source(), content_type="application/yaml").status == 201
    writer = Writer(cluster.nodes[leader].url)
    writer.start()
    assert redis_server.proc is not None
    try:
        wait_until(lambda: writer.written >= 50, 60, "first writes")
        redis_server.proc.send_signal(__import__("signal").SIGSTOP)  # accepts, never answers
        started, before = time.monotonic(), writer.written
        wait_until(lambda: writer.written >= before + 500, 60, "writes while Redis is stalled")
        elapsed = time.monotonic() - started
        # compactions happened meanwhile (every 200 entries) and their uploads hang on Redis
        assert elapsed < 30, f"500 writes took {elapsed:.1f}s with Redis stalled"
    finally:
        redis_server.proc.send_signal(__import__("signal").SIGCONT)
        writer.stop()
    assert writer.failures == [], writer.failures[:5]
    wait_until(lambda: http.get("/v1/cluster").json["snapshot"]["ok"] and
               (http.get("/v1/cluster").json["snapshot"]["last_index"] or 0) > 200, 60,
               "a snapshot to land after Redis resumed")
