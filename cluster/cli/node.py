"""`fsmcluster node`: run one cluster node (a Raft member and the HTTP API).

    fsmcluster node --raft 127.0.0.1:7001 --http 127.0.0.1:8001 \
        --peer 127.0.0.1:7002@127.0.0.1:8002 --peer 127.0.0.1:7003@127.0.0.1:8003 \
        --data-dir /var/lib/fsm/n1

Every flag is also an FSM_* environment variable (see cluster/config.py). SIGTERM
or SIGINT stops the HTTP server, then the Raft member, and exits 0. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from aiohttp import web

from cluster import config
from cluster.api.app import build_app
from cluster.raft.node import RaftNode

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


def run_node(args: argparse.Namespace) -> int:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = config.from_args(args)
    except config.SettingsError as exc:
        print(f"fsmcluster node: {exc}", file=sys.stderr)
        return 2
    try:
        return event_loop_runner()(serve(settings))
    except config.SettingsError as exc:
        print(f"fsmcluster node: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1


def event_loop_runner() -> Any:
    """uvloop when installed (the `fast` extra): a cheaper event loop for the HTTP API."""
    try:
        import uvloop

        return uvloop.run
    except ImportError:
        return asyncio.run


async def serve(settings: config.Settings) -> int:
    node = RaftNode(settings)
    app = build_app(node, settings)  # refuses a bad --auth-file before Raft starts
    node.start()
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    try:
        await runner.setup()
        host, port = config.parse_address(settings.http, "--http")
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        log.info("node %s serving http://%s (data dir %s)", settings.raft, settings.http, settings.data_dir)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("stopping")
    finally:
        await runner.cleanup()
        node.stop()
    return 0
