"""`fsmcluster up`: a local cluster of N node processes on 127.0.0.1, for trying things out.

Ports, from `--base-port B` (default 8100), for node i = 1..N:
HTTP on B+i (8101, 8102, 8103: the client commands' default `--url`s) and Raft on
B+100+i (8201, ...). Each node gets `--data-dir DIR/node-i` (DIR is a temporary
directory, removed at exit, unless `--data-dir` is given) and writes its log to
`DIR/node-i/node.log`. Ctrl-C or SIGTERM stops every node: SIGTERM, then SIGKILL
after a grace period, each by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

from cluster.client import AsyncClient
from cluster.client.errors import FsmError

READY_TIMEOUT = 60.0
STOP_GRACE = 5.0


@dataclass(frozen=True, slots=True)
class NodeSpec:
    index: int
    raft: str
    http: str
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://{self.http}"


def add_up_command(subparsers: Any) -> None:
    up = subparsers.add_parser("up", help="run a local cluster on 127.0.0.1 until Ctrl-C")
    up.add_argument("--nodes", type=int, default=3, help="number of nodes (default 3)")
    up.add_argument("--base-port", type=int, default=8100,
                    help="HTTP ports are BASE+1.., Raft ports BASE+101.. (default 8100)")
    up.add_argument("--data-dir", help="keep node data here (default: a temporary directory)")
    up.add_argument("--redis", help="Redis URL for snapshots, passed to every node")
    up.add_argument("--examples", action="store_true", help="apply the example machines once ready")
    up.set_defaults(handler=run_up)


def plan(nodes: int, base_port: int, data_dir: Path) -> list[NodeSpec]:
    return [
        NodeSpec(i, f"127.0.0.1:{base_port + 100 + i}", f"127.0.0.1:{base_port + i}", data_dir / f"node-{i}")
        for i in range(1, nodes + 1)
    ]


def node_command(spec: NodeSpec, cluster: list[NodeSpec], redis: str | None) -> list[str]:
    command = [sys.executable, "-m", "cluster", "node", "--raft", spec.raft, "--http", spec.http,
               "--data-dir", str(spec.data_dir)]
    for peer in cluster:
        if peer.index != spec.index:
            command += ["--peer", f"{peer.raft}@{peer.http}"]
    if redis:
        command += ["--redis", redis]
    return command


class LocalCluster:
    """The node processes of `up`, started and stopped by PID."""

    def __init__(self, specs: list[NodeSpec], redis: str | None) -> None:
        self.specs = specs
        self.redis = redis
        self.processes: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def start(self) -> None:
        for spec in self.specs:
            spec.data_dir.mkdir(parents=True, exist_ok=True)
            log = open(spec.data_dir / "node.log", "ab")  # noqa: SIM115 - closed in stop()
            self._logs.append(log)
            self.processes.append(subprocess.Popen(
                node_command(spec, self.specs, self.redis),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches only `up`, which stops nodes in order
            ))

    def exited(self) -> list[tuple[NodeSpec, int]]:
        return [(spec, code) for spec, proc in zip(self.specs, self.processes, strict=True)
                if (code := proc.poll()) is not None]

    def stop(self, grace: float = STOP_GRACE) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + grace
        for proc in self.processes:
            try:
                proc.wait(timeout=max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for log in self._logs:
            log.close()


async def wait_ready(specs: list[NodeSpec], cluster: LocalCluster, timeout: float) -> None:
    end = time.monotonic() + timeout
    async with AsyncClient([s.url for s in specs], attempt_timeout=2.0) as client:
        pending = list(specs)
        while pending:
            if cluster.exited():
                spec, code = cluster.exited()[0]
                raise RuntimeError(f"node {spec.index} exited with status {code}:\n{log_tail(spec)}")
            if time.monotonic() > end:
                raise RuntimeError(f"nodes not ready after {timeout:.0f} s: {', '.join(s.url for s in pending)}")
            pending = [s for s in pending if not await client.ready(s.url)]
            if pending:
                await asyncio.sleep(0.2)


def log_tail(spec: NodeSpec, lines: int = 15) -> str:
    """The end of a node's log, shown on failure (a temporary data dir is removed at exit)."""
    try:
        text = (spec.data_dir / "node.log").read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join("  " + line for line in text.splitlines()[-lines:])


async def apply_examples(urls: list[str]) -> list[str]:
    from schema_lang import example_names, load_example

    applied = []
    async with AsyncClient(urls) as client:
        for name in example_names():
            await client.put_machine(name, load_example(name))
            applied.append(name)
    return applied


def banner(specs: list[NodeSpec], data_dir: Path, temporary: bool, examples: list[str]) -> str:
    urls = ",".join(s.url for s in specs)
    first = specs[0].url
    lines = [f"fsmcluster: {len(specs)} nodes ready (data in {data_dir}{', removed at exit' if temporary else ''})"]
    lines += [f"  node {s.index}: {s.url}  (raft {s.raft}, log {s.data_dir / 'node.log'})" for s in specs]
    if examples:
        lines.append(f"example machines: {', '.join(examples)}")
    lines.append(f"dashboard: {first}/ui/ (every node serves it)")
    lines += [
        "",
        "try:",
        f"  export FSM_URL={urls}",
        "  fsmcluster status",
        "  fsmcluster transition lock db-1 create",
        "  fsmcluster transition lock db-1 acquire --data '{\"owner\": \"w1\"}'",
        "  fsmcluster object get lock db-1",
        "  fsmcluster object diagram lock db-1",
        "  fsmcluster watch --machine lock          # the event feed, live (another terminal)",
        f"  curl -s {first}/v1/cluster",
        f"  curl -s -X POST {first}/v1/machines/lock/objects/db-1/transitions/release \\",
        "       -H 'Content-Type: application/json' -d '{\"data\": {\"owner\": \"w1\"}}'",
        "",
        "Ctrl-C stops every node.",
    ]
    return "\n".join(lines)


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def run_up(args: argparse.Namespace) -> int:
    if not 1 <= args.nodes <= 9:
        print("error: usage: --nodes must be between 1 and 9", file=sys.stderr)
        return 2
    if not 1024 <= args.base_port <= 65535 - 100 - args.nodes:
        print("error: usage: --base-port leaves no room for the ports", file=sys.stderr)
        return 2
    temporary = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="fsmcluster-")) if temporary else Path(args.data_dir)
    specs = plan(args.nodes, args.base_port, data_dir)
    cluster = LocalCluster(specs, args.redis)
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        cluster.start()
        asyncio.run(wait_ready(specs, cluster, READY_TIMEOUT))
        examples = asyncio.run(apply_examples([s.url for s in specs])) if args.examples else []
        print(banner(specs, data_dir, temporary, examples), flush=True)
        return watch(cluster)
    except _Stop as stop:
        print(f"\nfsmcluster: {stop}: stopping {len(specs)} nodes", file=sys.stderr, flush=True)
        return 0
    except (RuntimeError, FsmError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for signum in previous:  # a second Ctrl-C must not cut the shutdown short
            signal.signal(signum, signal.SIG_IGN)
        cluster.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)


def watch(cluster: LocalCluster) -> int:
    """Wait for a signal; report nodes that exit on their own; give up when none is left."""
    reported: set[int] = set()
    while True:
        for spec, code in cluster.exited():
            if spec.index not in reported:
                reported.add(spec.index)
                print(f"fsmcluster: node {spec.index} exited with status {code}; "
                      f"see {spec.data_dir / 'node.log'}", file=sys.stderr, flush=True)
        if len(reported) == len(cluster.specs):
            return 1
        time.sleep(0.5)
