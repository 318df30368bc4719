"""`fsmcluster bench`: the core benchmark (and the cluster benchmark when available)."""

from __future__ import annotations

import argparse
from typing import Any


def add_bench_command(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench", help="measure throughput and latency")
    parser.add_argument("mode", nargs="?", default="core", choices=["core"],
                        help="core: the pure engine on one core")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiplies the number of operations (default 1.0)")
    parser.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    from . import bench_core

    return bench_core.main(args.scale)
