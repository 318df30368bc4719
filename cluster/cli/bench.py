"""`fsmcluster bench`: the core benchmark, and the cluster benchmark beside etcd.

    fsmcluster bench core [--scale 1.0]        the pure engine on one core
    fsmcluster bench cluster [--quick]         a local 3-node fsmcluster over HTTP
    fsmcluster bench compare [--quick]         the same, alternating with a 3-node etcd
    fsmcluster bench memory [--objects N]      bytes per lock object, snapshot size and time
    fsmcluster bench watch [--watchers ...]    event fan-out and lock waiters, beside etcd's watch

`cluster` and `compare` print a table, and (unless --no-docs) write their
section of docs/BENCHMARKS.md and a chart docs/bench-<mode>.png.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

QUICK = {"clients": "1,16", "rounds": 1, "duration": 2.0, "warmup": 0.5, "kinds": "cas,read,batch"}


def add_bench_command(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench", help="measure throughput and latency")
    parser.add_argument("mode", nargs="?", default="core", choices=["core", "cluster", "compare", "memory", "watch"],
                        help="core: the pure engine on one core; cluster: a local 3-node "
                             "cluster over HTTP; compare: the cluster beside a 3-node etcd; "
                             "memory: bytes per lock object and snapshot cost at --objects")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="core: multiplies the number of operations (default 1.0)")
    parser.add_argument("--objects", type=int, default=1_000_000,
                        help="memory: number of lock objects (default 1,000,000)")
    parser.add_argument("--quick", action="store_true",
                        help="a short smoke run: 1 round, 2 s points, clients 1,16; no docs")
    parser.add_argument("--clients", "--concurrency", dest="clients", help="client counts, e.g. 1,16,64,256 "
                        "(default: 1,16,64 for cluster, 1,16,64,256 for compare)")
    parser.add_argument("--kinds", default=None, help="workloads: cas,read,mix,batch (default all)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 3)")
    parser.add_argument("--duration", type=float, default=None, help="measured seconds per point (5)")
    parser.add_argument("--warmup", type=float, default=None, help="unmeasured seconds per point (1)")
    parser.add_argument("--processes", type=int, default=2, help="load generator processes (2)")
    parser.add_argument("--probe-clients", type=int, default=2,
                        help="high-lane probe clients beside the overload points (2; 0: none)")
    parser.add_argument("--probe-from", type=int, default=64,
                        help="run the probe beside batch points with at least this many clients (64)")
    parser.add_argument("--keys", type=int, default=10_000, help="objects / keys (default 10,000)")
    parser.add_argument("--node-arg", action="append", default=[],
                        help="extra flag for every fsmcluster node, e.g. --node-arg=--heartbeat-period=0.05")
    parser.add_argument("--docs", default="docs", help="where BENCHMARKS.md and the chart go (docs)")
    parser.add_argument("--no-docs", action="store_true", help="print only; write nothing to docs/")
    parser.add_argument("--json-out", help="also write the summaries as JSON to this file")
    parser.add_argument("--watchers", default="fanout:0,fanout:1,fanout:100,fanout:1000,waiters:1000",
                        help="watch: points as MODE:W (fanout or waiters)")
    parser.add_argument("--systems", default="fsm,etcd", help="watch: systems to run (fsm,etcd)")
    parser.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    if args.mode == "core":
        from cluster.bench import core as bench_core

        return bench_core.main(args.scale)
    if args.mode == "watch":
        from cluster.bench import watch

        points = [(p.split(":")[0], int(p.split(":")[1])) for p in args.watchers.split(",")]
        return watch.main(args.systems.split(","), points, int((args.clients or "64").split(",")[0]),
                          args.duration or 10.0, args.warmup or 2.0, args.json_out)
    if args.mode == "memory":
        from cluster.bench import memory

        return memory.main(max(1000, min(args.objects, 5_000_000)))
    return run_cluster_bench(args)


def build_plan(args: argparse.Namespace) -> Any:
    from cluster.bench.compare import Plan, parse_list
    from cluster.bench.workloads import KINDS

    quick: dict[str, Any] = QUICK if args.quick else {}
    default_clients = "1,16,64" if args.mode == "cluster" else "1,16,64,256"
    duration = args.duration if args.duration is not None else quick.get("duration", 5.0)
    warmup = args.warmup if args.warmup is not None else quick.get("warmup", 1.0)
    rounds = args.rounds if args.rounds is not None else quick.get("rounds", 3)
    if not (0 < duration <= 120 and 0 <= warmup <= 30 and 1 <= rounds <= 9):
        raise ValueError("need 0 < --duration <= 120, 0 <= --warmup <= 30, 1 <= --rounds <= 9")
    if not 1 <= args.keys <= 2_000_000:
        raise ValueError("--keys must be between 1 and 2,000,000")
    clients = tuple(int(c) for c in parse_list(args.clients or quick.get("clients", default_clients)))
    if not clients or any(not 1 <= c <= 1024 for c in clients):
        raise ValueError("--clients must be between 1 and 1024")
    if not 0 <= args.probe_clients <= 8:
        raise ValueError("--probe-clients must be between 0 and 8")
    return Plan(
        systems=("fsm",) if args.mode == "cluster" else ("fsm", "etcd"),
        kinds=parse_list(args.kinds or quick.get("kinds", ",".join(KINDS)), KINDS),
        clients=clients, rounds=rounds, duration=duration, warmup=warmup,
        processes=max(1, min(args.processes, 8)), keys=args.keys, node_args=tuple(args.node_arg),
        probe_clients=args.probe_clients, probe_from=args.probe_from,
    )


def recorded_command(argv: list[str], mode: str) -> str:
    """The command line as docs/BENCHMARKS.md shows it: no output paths of this machine."""
    words = argv[argv.index("bench") + 1:] if "bench" in argv else [mode]
    shown: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in ("--json-out", "--docs"):
            skip = True
        elif not word.startswith(("--json-out=", "--docs=")):
            shown.append(word)
    return "./scripts/bench " + shlex.join(shown)


def run_cluster_bench(args: argparse.Namespace) -> int:
    import json

    from cluster.bench import compare, report
    from cluster.bench.systems import SystemUnavailable

    try:
        plan = build_plan(args)
    except ValueError as exc:
        print(f"fsmcluster bench: {exc}", file=sys.stderr)
        return 2
    command = recorded_command(sys.argv, args.mode)
    print(f"{command}: {plan.points} points, about {plan.estimate_seconds() / 60:.1f} min",
          file=sys.stderr)
    try:
        result = compare.run(plan)
    except SystemUnavailable as exc:
        print(f"fsmcluster bench: {exc}", file=sys.stderr)
        return 1
    summaries = report.summarize(result.measurements)
    print(report.text_table(summaries))
    for note in result.notes:
        print(note)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report.to_json(result, summaries), indent=1))
    if not (args.no_docs or args.quick):
        docs = Path(args.docs)
        chart = docs / f"bench-{args.mode}.png"
        drawn = report.write_chart(summaries, chart)
        if not drawn:
            print("no chart: matplotlib is missing (pip install -e '.[bench]')", file=sys.stderr)
        section = report.markdown_section(result, summaries, command, chart.name if drawn else None)
        report.write_docs_section(docs / "BENCHMARKS.md", args.mode, section)
        print(f"wrote {docs / 'BENCHMARKS.md'} (section {args.mode})"
              + (f" and {chart}" if drawn else ""))
    return 0
