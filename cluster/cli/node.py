"""`fsmcluster node`: run one cluster node (a Raft member and the HTTP API).

    fsmcluster node --raft 127.0.0.1:7001 --http 127.0.0.1:8001 \
        --peer 127.0.0.1:7002@127.0.0.1:8002 --peer 127.0.0.1:7003@127.0.0.1:8003 \
        --data-dir /var/lib/fsm/n1

Every flag is also an FSM_* environment variable (see cluster/config.py). With
`--join URL` instead of `--peer`, the node asks a running cluster to add it (join.py).
SIGTERM or SIGINT stops gracefully: /readyz and new requests answer 503 at once,
running requests finish (at most --shutdown-timeout), a leader hands leadership
over, then the HTTP server and the Raft member stop and it exits 0. Logs go to
stderr, as text or (`--log-format json`) one JSON object per line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any

from aiohttp import web

from cluster import config, gc_policy, logs
from cluster.api.app import build_app
from cluster.api.context import LIFECYCLE
from cluster.errors import ClusterError
from cluster.raft.node import RaftNode

from . import join

log = logging.getLogger("fsmcluster.node")


def add_node_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "node",
        help="run one cluster node",
        description="Run one node: a Raft member and the HTTP API on every node.",
    )
    config.add_arguments(parser)
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    parser.set_defaults(handler=run_node, func=run_node)


def share_interpreter(settings: config.Settings) -> None:
    """How often the node's threads (Raft, HTTP, journal sync) hand the GIL over.

    A thread that wants the GIL waits until the holder has run `--gil-switch-interval`,
    and a write crosses threads several times (the HTTP thread proposes, the Raft thread
    replicates, applies and calls back), each time possibly behind the other busy thread.
    Why 1 ms and not CPython's 5: docs/BENCHMARKS.md, round eight (the pairs measured).

    And, with `--sched-batch on` (Linux), under SCHED_BATCH: a thread woken by the kernel (an
    answer to a proposal, a Raft message, a request) then waits for the running thread's turn
    to end instead of preempting it, and a thread preempted at a wake-up is often one holding
    the GIL: nothing runs Python until it gets a core back. Measured: docs/BENCHMARKS.md, round
    fifteen."""
    sys.setswitchinterval(settings.gil_switch_interval)
    if settings.sched_batch and hasattr(os, "SCHED_BATCH"):
        # every thread started later inherits it; no privilege needed (unlike a higher priority)
        try:
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        except OSError as exc:  # a sandbox's seccomp policy, say: the default policy then
            log.warning("--sched-batch: the kernel refused SCHED_BATCH (%s); the node runs under "
                        "the default policy", exc)


def run_node(args: argparse.Namespace) -> int:
    try:
        settings = config.from_args(args)
    except config.SettingsError as exc:
        print(f"fsmcluster node: {exc}", file=sys.stderr)
        return 2
    logs.configure(args.log_level, settings.log_format)
    share_interpreter(settings)
    try:
        return event_loop_runner()(serve(settings))  # type: ignore[no-any-return]
    except config.SettingsError as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1


def event_loop_runner() -> Any:
    """uvloop (a dependency on Linux): a cheaper event loop for the HTTP API; asyncio elsewhere."""
    try:
        import uvloop

        return uvloop.run
    except ImportError:
        return asyncio.run


async def serve(settings: config.Settings) -> int:
    member_already = True
    if settings.join:
        settings, member_already = await join.discover(settings)
    node = RaftNode(settings)
    app = build_app(node, settings)  # refuses a bad --auth-file before Raft starts
    node.start()
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    outcome = {"code": 0}
    try:
        await runner.setup()
        host, port = config.parse_address(settings.http, "--http")
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        log.info("node %s serving http://%s (data dir %s)", settings.raft, settings.http, settings.data_dir)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        freezer = loop.create_task(gc_policy.freeze_periodically())
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if not member_already:
            joining = asyncio.create_task(_join(settings, stop, outcome))
        await stop.wait()
        freezer.cancel()
        if not member_already:
            joining.cancel()
        await graceful_stop(app, node, settings)
    finally:
        await runner.cleanup()
        node.stop()
    log.info("stopped")
    return outcome["code"]


async def _join(settings: config.Settings, stop: asyncio.Event, outcome: dict[str, int]) -> None:
    try:
        await join.ask_to_join(settings)
    except config.SettingsError as exc:
        log.error("%s; stopping", exc)
        outcome["code"] = 1
        stop.set()


async def graceful_stop(app: web.Application, node: RaftNode, settings: config.Settings) -> None:
    """SIGTERM: /readyz 503 and new requests 503 at once, let running ones finish, hand
    leadership over if we lead; the caller then closes the HTTP server and Raft."""
    lifecycle = app[LIFECYCLE]
    lifecycle.drain()
    log.info("stopping: draining %d running requests (at most %gs)", lifecycle.in_flight,
             settings.shutdown_timeout)
    if not await lifecycle.wait_idle(settings.shutdown_timeout):
        log.warning("stopping with %d requests still running", lifecycle.in_flight)
    try:
        if node.status().is_leader:
            await node.hand_over(5.0)
    except ClusterError as exc:
        log.warning("could not hand leadership over: %s", exc)
