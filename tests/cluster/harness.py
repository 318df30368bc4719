"""Real fsmcluster node processes on 127.0.0.1, for cluster and fault tests.

    from tests.cluster.harness import Cluster

    cluster = Cluster(tmp_path, n=3)      # nothing runs yet; ports are chosen
    cluster.start()                       # spawn every node, wait until all answer /readyz 200
    cluster.urls                          # ["http://127.0.0.1:P0", ...], index i = node i
    cluster.leader_url()                  # URL of the agreed leader (waits, bounded)
    cluster.leader_index()                # its index
    cluster.kill(i)                       # kill -9 node i (and reap it)
    cluster.pause(i) / cluster.resume(i)  # SIGSTOP / SIGCONT
    cluster.restart(i)                    # start node i again: same ports, same data dir
    cluster.stop()                        # SIGTERM every node (SIGKILL after 5 s); always safe
    cluster.wait_ready([0, 2])            # /readyz 200 on those nodes (default: all running)
    cluster.log(i)                        # node i's stderr so far (for failure messages)

    Cluster(tmp_path, n=3, raft_bind=True)  # node i binds Raft on nodes[i].bind_port while its
                                          # advertised --raft stays nodes[i].raft_port: put a
                                          # proxy there (tests/faults/proxy.py) to cut links

    http = cluster.http(i)                # a small JSON client bound to node i
    r = http.put("/v1/machines/lock", body=yaml_text, content_type="application/yaml")
    r = http.post("/v1/machines/lock/objects/a/transitions/create", json={"data": {}})
    r.status, r.json, r.headers, r.text

Processes are started with `sys.executable -m cluster node ...` and stopped only by
their PID. `Cluster` is also a context manager (stop() on exit); the pytest fixtures
in conftest.py always stop what they started. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0  # generous: other test suites may share the two cores


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def error_code(self) -> str | None:
        try:
            return self.json["error"]["code"]  # type: ignore[no-any-return]
        except (ValueError, TypeError, KeyError):
            return None

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.text[:400]!r})"


class Http:
    """A keep-alive HTTP/1.1 JSON client for one node (reconnects when needed)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: bytes | str | None = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        hdrs = dict(headers or {})
        payload: bytes | None = None
        if json is not None:
            payload = _dumps(json)
            hdrs.setdefault("Content-Type", "application/json")
        elif body is not None:
            payload = body.encode() if isinstance(body, str) else body
            if content_type:
                hdrs.setdefault("Content-Type", content_type)
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=payload, headers=hdrs)
                raw = conn.getresponse()
                data = raw.read()
                return Response(raw.status, {k: v for k, v in raw.getheaders()}, data)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2 or method not in ("GET", "HEAD"):
                    raise
        raise AssertionError("unreachable")

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Response:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> Response:
        return self.request("DELETE", path, **kw)

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out on 127.0.0.1, all held open together so none repeats."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class NodeProcess:
    index: int
    raft_port: int
    http_port: int
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    paused: bool = False
    starts: int = 0
    bind_port: int | None = None  # with Cluster(raft_bind=True): where Raft really listens

    @property
    def raft(self) -> str:
        return f"127.0.0.1:{self.raft_port}"

    @property
    def http(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def url(self) -> str:
        return f"http://{self.http}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Cluster:
    base_dir: Path
    n: int = 3
    extra_args: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    nodes: list[NodeProcess] = field(default_factory=list)
    raft_bind: bool = False

    def __post_init__(self) -> None:
        self.base_dir = Path(self.base_dir)
        ports = free_ports(3 * self.n)
        for i in range(self.n):
            node_dir = self.base_dir / f"node{i}"
            self.nodes.append(
                NodeProcess(i, ports[2 * i], ports[2 * i + 1], node_dir / "data", node_dir / "node.log",
                            bind_port=ports[2 * self.n + i] if self.raft_bind else None)
            )
        self._clients: dict[int, Http] = {}

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def command(self, i: int) -> list[str]:
        node = self.nodes[i]
        cmd = [sys.executable, "-m", "cluster", "node", "--raft", node.raft, "--http", node.http,
               "--data-dir", str(node.data_dir)]
        for other in self.nodes:
            if other.index != i:
                cmd += ["--peer", f"{other.raft}@{other.http}"]
        if node.bind_port is not None:
            cmd += ["--raft-bind", f"127.0.0.1:{node.bind_port}"]
        return cmd + list(self.extra_args)

    def start(self, wait: bool = True) -> Cluster:
        for i in range(self.n):
            self.spawn(i)
        if wait:
            self.wait_ready()
        return self

    def spawn(self, i: int) -> None:
        node = self.nodes[i]
        if node.running:
            raise RuntimeError(f"node {i} is already running (pid {node.proc.pid})")  # type: ignore[union-attr]
        node.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        log = open(node.log_path, "ab")  # noqa: SIM115 - handed to the child
        log.write(f"--- start {node.starts}: {' '.join(self.command(i))}\n".encode())
        log.flush()
        node.proc = subprocess.Popen(
            self.command(i), cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        log.close()
        node.paused = False
        node.starts += 1

    def restart(self, i: int, wait: bool = True) -> None:
        if self.nodes[i].running:
            self.stop_node(i)
        self.close_client(i)
        self.spawn(i)
        if wait:
            self.wait_ready([i])

    def kill(self, i: int) -> None:
        """kill -9 node i and reap it."""
        node = self.nodes[i]
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait(timeout=10)
        node.paused = False
        self.close_client(i)

    def pause(self, i: int) -> None:
        proc = self.nodes[i].proc
        assert proc is not None and proc.poll() is None, f"node {i} is not running"
        proc.send_signal(signal.SIGSTOP)
        self.nodes[i].paused = True

    def resume(self, i: int) -> None:
        proc = self.nodes[i].proc
        assert proc is not None and proc.poll() is None, f"node {i} is not running"
        proc.send_signal(signal.SIGCONT)
        self.nodes[i].paused = False

    def stop_node(self, i: int, grace: float = 5.0) -> None:
        node = self.nodes[i]
        proc = node.proc
        if proc is None or proc.poll() is not None:
            return
        if node.paused:
            proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        node.paused = False
        self.close_client(i)

    def stop(self, i: int | None = None) -> None:
        """Stop node i, or every node this cluster started (always safe to call)."""
        for index in [i] if i is not None else range(self.n):
            with contextlib.suppress(Exception):
                self.stop_node(index)
        if i is None:
            for index in list(self._clients):
                self.close_client(index)

    # -- waiting and finding ------------------------------------------------

    def running_indexes(self) -> list[int]:
        return [n.index for n in self.nodes if n.running and not n.paused]

    def wait_ready(self, indexes: Iterable[int] | None = None, timeout: float = READY_TIMEOUT) -> None:
        pending = set(self.running_indexes() if indexes is None else indexes)
        deadline = time.monotonic() + timeout
        while pending:
            for i in sorted(pending):
                if not self.nodes[i].running:
                    raise RuntimeError(f"node {i} exited:\n{self.log(i)[-3000:]}")
                if self._probe(i, "/readyz") == 200:
                    pending.discard(i)
            if pending and time.monotonic() > deadline:
                logs = "\n".join(f"node {i}:\n{self.log(i)[-2000:]}" for i in sorted(pending))
                raise TimeoutError(f"nodes {sorted(pending)} not ready after {timeout}s\n{logs}")
            if pending:
                time.sleep(0.1)

    def leader_index(self, timeout: float = READY_TIMEOUT, among: Iterable[int] | None = None) -> int:
        """Index of the node that a majority of the reachable nodes name as leader."""
        deadline = time.monotonic() + timeout
        candidates = list(among) if among is not None else None
        while True:
            votes: dict[str, int] = {}
            for i in candidates if candidates is not None else self.running_indexes():
                status = self._status(i)
                leader = (status or {}).get("leader") or {}
                if leader.get("raft"):
                    votes[leader["raft"]] = votes.get(leader["raft"], 0) + 1
            for raft, count in votes.items():
                if count > self.n // 2:
                    for node in self.nodes:
                        if node.raft == raft and node.running and not node.paused:
                            return node.index
            if time.monotonic() > deadline:
                raise TimeoutError(f"no agreed leader after {timeout}s (views: {votes})")
            time.sleep(0.1)

    def leader_url(self, timeout: float = READY_TIMEOUT) -> str:
        return self.nodes[self.leader_index(timeout)].url

    def follower_indexes(self) -> list[int]:
        leader = self.leader_index()
        return [i for i in self.running_indexes() if i != leader]

    # -- HTTP ---------------------------------------------------------------

    def http(self, i: int) -> Http:
        if i not in self._clients:
            self._clients[i] = Http(self.nodes[i].url)
        return self._clients[i]

    def close_client(self, i: int) -> None:
        client = self._clients.pop(i, None)
        if client is not None:
            client.close()

    def log(self, i: int) -> str:
        try:
            return self.nodes[i].log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _probe(self, i: int, path: str) -> int | None:
        client = Http(self.nodes[i].url, timeout=2.0)
        try:
            return client.get(path).status
        except OSError:
            return None
        finally:
            client.close()

    def _status(self, i: int) -> dict[str, Any] | None:
        client = Http(self.nodes[i].url, timeout=2.0)
        try:
            r = client.get("/v1/cluster")
            return r.json if r.status == 200 else None
        except (OSError, ValueError):
            return None
        finally:
            client.close()
