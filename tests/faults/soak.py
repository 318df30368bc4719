"""The soak: the fault workloads for minutes on one cluster, under a random nemesis.

    scripts/soak                       # 10 minutes
    scripts/soak --minutes 3 --seed 7
    scripts/soak --recheck /tmp/fsm-soak-XXXX/round0-reg.jsonl --max-steps 50000000

Rounds of `--round-seconds` cycle through the register, lock and dedup
workloads (fresh keys each round) while the nemesis kills, pauses and
partitions one node at a time (the leader half of the time); with
`--power-cut` the data dirs live on `powercut_fs` and the nemesis also cuts the
power of all three nodes at once (kill -9, unsynced data dropped). Each round is
checked for linearizability and convergence; the run prints one line per round
and a total, and exits 1 on any anomaly. Nodes run under a temporary directory
that is kept (and printed) when the run fails, with the failed rounds' histories;
`--recheck` checks one of them again (a verdict "unknown" with a larger `--max-steps`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.cluster.harness import Cluster
from tests.faults.history import Operation
from tests.faults.linearizability import DEFAULT_MAX_STEPS, Result, check
from tests.faults.nemesis import KINDS, POWER_CUT, Nemesis
from tests.faults.powercut import Disk, mounted, place_data_dirs, unavailable_reason
from tests.faults.workloads import (
    DedupWorkload,
    LockWorkload,
    RegisterWorkload,
    Workload,
    run_workload,
)

WORKLOADS = (RegisterWorkload, LockWorkload, DedupWorkload)


def make_workload(round_no: int, seed: int) -> Workload:
    kind = WORKLOADS[round_no % len(WORKLOADS)]
    round_seed = seed * 1000 + round_no
    if kind is DedupWorkload:
        return DedupWorkload(seed=round_seed)
    return kind(keys=4, seed=round_seed)  # type: ignore[call-arg]


def soak(minutes: float, round_seconds: float, seed: int, base: Path,
         node_args: Sequence[str] = (), power_cut: bool = False) -> int:
    if not power_cut:
        return soak_on(None, minutes, round_seconds, seed, base, node_args)
    reason = unavailable_reason()
    if reason is not None:
        print(f"soak: --power-cut: {reason}", file=sys.stderr)
        return 2
    with mounted(base / "disk") as disk:
        return soak_on(disk, minutes, round_seconds, seed, base, node_args)


def soak_on(disk: Disk | None, minutes: float, round_seconds: float, seed: int, base: Path,
            node_args: Sequence[str]) -> int:
    deadline = time.monotonic() + minutes * 60
    cluster = Cluster(base, n=3, raft_bind=True, extra_args=tuple(node_args))
    if disk is not None:
        place_data_dirs(cluster, disk)
    kinds = (*KINDS, POWER_CUT) if disk is not None else KINDS
    totals = {"rounds": 0, "ops": 0, "faults": 0, "anomalies": 0}
    started = time.monotonic()
    with Nemesis.around(cluster, seed=seed, disk=disk) as nemesis:
        round_no = 0
        while time.monotonic() < deadline - 10:
            seconds = min(round_seconds, max(10.0, deadline - time.monotonic() - 10))
            faults_before = nemesis.total
            workload = make_workload(round_no, seed)
            report = run_workload(cluster, workload, seconds, nemesis, kinds, seed=seed * 1000 + round_no)
            print(report.summary(), flush=True)
            if report.anomalies:
                print(report.failure(), flush=True)
                print(nemesis.timeline(), flush=True)
                kept = save_history(workload, base / f"round{round_no}-{workload.name}.jsonl")
                print(f"history kept in {kept}; check it again with scripts/soak --recheck "
                      f"{kept} --max-steps {DEFAULT_MAX_STEPS * 50}", flush=True)
            totals["rounds"] += 1
            totals["ops"] += report.figures.ops
            totals["faults"] += nemesis.total - faults_before
            totals["anomalies"] += report.anomalies
            round_no += 1
        faults = nemesis.describe()
    elapsed = time.monotonic() - started
    print(
        f"soak: {elapsed / 60:.1f} min, {totals['rounds']} rounds, {totals['ops']} operations, "
        f"{totals['faults']} faults ({faults}), anomalies {totals['anomalies']}",
        flush=True,
    )
    return 1 if totals["anomalies"] else 0


def save_history(workload: Workload, path: Path) -> Path:
    """One JSON line per operation, for the checker offline (tests.faults.history.Operation
    fields); the file's name ends in `-<workload name>.jsonl`, which `recheck` reads."""
    with path.open("w") as f:
        for op in workload.history.operations():
            f.write(json.dumps(dataclasses.asdict(op), default=repr) + "\n")
    return path


def load_history(path: Path) -> list[Operation]:
    """The operations `save_history` wrote, as the checker saw them (JSON arrays were tuples)."""
    with path.open() as f:
        return [Operation(**_tuples(json.loads(line))) for line in f if line.strip()]


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def recheck(path: Path, max_steps: int) -> Result:
    """Checks a kept history again, with the model of the workload its file name names."""
    by_name = {kind.name: kind for kind in WORKLOADS}
    name = path.name.removesuffix(".jsonl").rpartition("-")[2]
    if not path.name.endswith(".jsonl") or name not in by_name:
        raise ValueError(f"{path.name}: expected a history the soak kept, named "
                         f"round<N>-<{'|'.join(by_name)}>.jsonl")
    return check(load_history(path), by_name[name](keys=0).model(), max_steps=max_steps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="total duration (default 10)")
    parser.add_argument("--round-seconds", type=float, default=60.0, help="one workload round")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--node-arg", action="append", default=[], metavar="ARG",
                        help="passed to every node, e.g. --node-arg=--log-compaction-entries=200 "
                             "--node-arg=--log-compaction-bytes=0 (snapshots 25x as often: stresses "
                             "dumps, compaction and snapshot installs)")
    parser.add_argument("--power-cut", action="store_true",
                        help="data dirs on powercut_fs (FUSE); the nemesis also cuts the power of every node")
    parser.add_argument("--recheck", type=Path, metavar="FILE",
                        help="no soak: check a history a failed round kept (roundN-NAME.jsonl) again")
    parser.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS,
                        help=f"with --recheck: the checker's search budget per key (default "
                             f"{DEFAULT_MAX_STEPS:,}; a round's verdict \"unknown\" means it ran out)")
    args = parser.parse_args(argv)
    if args.recheck is not None:
        try:
            result = recheck(args.recheck, args.max_steps)
        except (OSError, ValueError) as exc:
            parser.error(str(exc))
        print(f"{args.recheck.name}: checker {result.verdict} ({result.ops_checked} ops, "
              f"{result.steps} steps, max_steps {args.max_steps})", flush=True)
        if not result.ok:
            print(result.explanation, flush=True)
        return 0 if result.ok else 1
    extra = "".join(f" --node-arg={a}" for a in args.node_arg) + (" --power-cut" if args.power_cut else "")
    print(f"soak: --minutes {args.minutes:g} --round-seconds {args.round_seconds:g} --seed {args.seed}{extra}",
          flush=True)
    base = Path(tempfile.mkdtemp(prefix="fsm-soak-"))
    code = soak(args.minutes, args.round_seconds, args.seed, base, args.node_arg, args.power_cut)
    if code == 0:
        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f"node logs kept in {base}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
