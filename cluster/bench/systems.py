"""The two systems under test, as local 3-node clusters on 127.0.0.1.

`FsmCluster` runs `python -m cluster node` three times; `EtcdCluster` runs the
Debian `etcd` binary three times (installing `etcd-server` with apt when it is
missing and we may). Both pick free ports, keep their data in a temporary
directory, stop only the processes they started (by PID) and load the same
keys: `k000000`... (fsmcluster: objects of the `register` machine).
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson

from .workloads import MACHINE, REGISTER_MACHINE, b64, key_name

READY_TIMEOUT = 60.0
LOAD_CHUNK = {"fsm": 1000, "etcd": 100}  # etcd refuses txns over 128 operations
LOAD_ATTEMPTS = 30


class SystemUnavailable(Exception):
    """The system cannot run here (e.g. etcd is not installed and cannot be)."""


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def call(url: str, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {"Content-Type": "application/json"})
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


class LocalCluster:
    """Three processes started and stopped by PID, with their logs in a temp dir."""

    name = "?"

    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"bench-{self.name}-"))
        self.processes: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []
        self.load_retries = 0

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def spawn(self, command: Sequence[str], log_name: str) -> None:
        with open(self.workdir / log_name, "ab") as log:
            self.processes.append(subprocess.Popen(
                list(command), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True))

    def wait_until(self, ready: Callable[[], bool], what: str) -> None:
        end = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < end:
            dead = [p.pid for p in self.processes if p.poll() is not None]
            if dead:
                raise SystemUnavailable(f"{self.name}: process {dead} exited; logs in {self.workdir}")
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemUnavailable(f"{self.name}: {what} not reached in {READY_TIMEOUT:.0f} s")

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.processes = []
        shutil.rmtree(self.workdir, ignore_errors=True)

    def start(self) -> None:
        raise NotImplementedError

    def leader_first(self) -> tuple[str, ...]:
        """The URLs starting at the current leader's, so a 1-client point reads from the
        leader on both systems (each at its best: no hop to the leader); the order of the
        rest is kept. Unchanged when no leader is known."""
        try:
            at = self.urls.index(self.leader_url())
        except (OSError, ValueError, KeyError, TypeError):
            return tuple(self.urls)
        return tuple(self.urls[at:] + self.urls[:at])

    def leader_url(self) -> str:
        raise NotImplementedError

    def load(self, keys: int, progress: Callable[[int], object] = lambda done: None) -> None:
        """Create `keys` keys, in chunks, from a few threads."""
        chunk = LOAD_CHUNK[self.name]
        starts = list(range(0, keys, chunk))

        def one(start: int) -> int:
            for attempt in range(LOAD_ATTEMPTS):  # a leader change or overload (429): retry
                status, body = self.load_chunk(start, min(keys, start + chunk))
                if status == 200:
                    return start
                if status not in (429, 503, 504) or attempt == LOAD_ATTEMPTS - 1:
                    break
                self.load_retries += 1
                time.sleep(1.0)
            raise SystemUnavailable(f"{self.name}: loading keys failed: {status} {body[:300]!r}")

        done = 0
        with ThreadPoolExecutor(4) as pool:
            for _ in pool.map(one, starts):
                done += 1
                progress(min(keys, done * chunk))

    def load_chunk(self, start: int, stop: int) -> tuple[int, bytes]:
        raise NotImplementedError


class FsmCluster(LocalCluster):
    name = "fsm"

    def __init__(self, node_args: Sequence[str] = (), workdir: Path | None = None) -> None:
        super().__init__(workdir)
        self.node_args = list(node_args)

    def start(self) -> None:
        ports = free_ports(6)
        rafts = [f"127.0.0.1:{p}" for p in ports[:3]]
        https = [f"127.0.0.1:{p}" for p in ports[3:]]
        for i in range(3):
            command = [sys.executable, "-m", "cluster", "node", "--raft", rafts[i], "--http", https[i],
                       "--data-dir", str(self.workdir / f"n{i}"), "--log-level", "WARNING",
                       *self.node_args]
            for j in range(3):
                if j != i:
                    command += ["--peer", f"{rafts[j]}@{https[j]}"]
            self.spawn(command, f"n{i}.log")
        self.urls = [f"http://{h}" for h in https]
        self.wait_until(lambda: all(call(u, "GET", "/readyz", timeout=2)[0] == 200 for u in self.urls),
                        "all nodes ready")
        status, body = call(self.urls[0], "PUT", f"/v1/machines/{MACHINE}", REGISTER_MACHINE.encode(),
                            {"Content-Type": "application/yaml"})
        if status not in (200, 201):
            raise SystemUnavailable(f"fsm: cannot define the {MACHINE} machine: {status} {body!r}")

    def leader_url(self) -> str:
        _, body = call(self.urls[0], "GET", "/v1/cluster", timeout=5)
        return f"http://{orjson.loads(body)['leader']['http']}"

    def load_chunk(self, start: int, stop: int) -> tuple[int, bytes]:
        ops = [{"machine": MACHINE, "id": key_name(i), "transition": "create"} for i in range(start, stop)]
        return call(self.urls[(start // 1000) % 3], "POST", "/v1/batch",
                    orjson.dumps({"operations": ops}))


def find_etcd(install: bool = True) -> str:
    """Path of the etcd binary; installs Debian `etcd-server` when missing and possible."""
    found = shutil.which("etcd")
    if found:
        return found
    if not install:
        raise SystemUnavailable("etcd is not installed (Debian: apt-get install etcd-server)")
    if not shutil.which("apt-get") or os.geteuid() != 0:
        raise SystemUnavailable(
            "etcd is not installed and cannot be installed here (needs apt-get as root): "
            "install Debian `etcd-server` to compare with etcd")
    print("etcd is missing: apt-get install etcd-server ...", file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "etcd-server"]):
        if subprocess.run(command, env=env, capture_output=True, timeout=600).returncode != 0:
            raise SystemUnavailable(f"`{' '.join(command)}` failed: cannot compare with etcd")
    found = shutil.which("etcd")
    if not found:
        raise SystemUnavailable("etcd-server installed but no `etcd` binary on PATH")
    return found


class EtcdCluster(LocalCluster):
    name = "etcd"

    def __init__(self, binary: str, workdir: Path | None = None) -> None:
        super().__init__(workdir)
        self.binary = binary

    def start(self) -> None:
        ports = free_ports(6)
        peers = [f"http://127.0.0.1:{p}" for p in ports[3:]]
        self.urls = [f"http://127.0.0.1:{p}" for p in ports[:3]]
        initial = ",".join(f"n{i}={peers[i]}" for i in range(3))
        for i in range(3):
            self.spawn([
                self.binary, "--name", f"n{i}", "--data-dir", str(self.workdir / f"n{i}.etcd"),
                "--listen-client-urls", self.urls[i], "--advertise-client-urls", self.urls[i],
                "--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", "fsmcluster-bench", "--logger", "zap", "--log-level", "warn",
            ], f"n{i}.log")
        self.wait_until(lambda: all(call(u, "GET", "/health", timeout=2)[0] == 200 for u in self.urls),
                        "all members healthy")

    def leader_url(self) -> str:
        for url in self.urls:
            _, body = call(url, "POST", "/v3/maintenance/status", b"{}", timeout=5)
            status = orjson.loads(body)
            if status["header"]["member_id"] == status["leader"]:
                return url
        raise KeyError("no member says it leads")

    def load_chunk(self, start: int, stop: int) -> tuple[int, bytes]:
        puts = [{"request_put": {"key": b64(key_name(i)), "value": b64("v" * 64)}}
                for i in range(start, stop)]
        return call(self.urls[(start // 100) % 3], "POST", "/v3/kv/txn", orjson.dumps({"success": puts}))
