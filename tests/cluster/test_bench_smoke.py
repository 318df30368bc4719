"""Smoke test of `fsmcluster bench cluster --quick`: it starts a 3-node cluster, drives
it and produces numbers. No timing is asserted: this box is shared."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import ROOT

pytestmark = pytest.mark.cluster


def test_quick_cluster_bench_produces_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "cluster", "bench", "cluster", "--quick", "--keys", "500",
         "--clients", "1,4", "--kinds", "cas,read,batch", "--duration", "1", "--warmup", "0.3",
         "--probe-from", "4",  # the high-lane probe beside batches at 4 clients
         "--json-out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(out.read_text())
    summaries = figures["summaries"]
    # what the idle cluster costs its neighbour in a compare (here the only one, fsm)
    assert figures["conditions"]["fsm cluster idle"].endswith("% of a core"), figures["conditions"]
    assert {(s["kind"], s["clients"]) for s in summaries} == {
        (kind, clients) for kind in ("cas", "read", "batch") for clients in (1, 4)
    }
    cores = 100.0 * (os.cpu_count() or 1)
    for s in summaries:
        assert s["system"] == "fsm"
        assert s["ops_per_s"] > 0, s
        assert s["p50_ms"] is not None and s["p99_ms"] is not None, s
        # where the machine's time went: the fields of /proc/stat, adding up to every core
        split = s["machine_pct"]
        assert set(split) == {"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}, s
        assert abs(sum(split.values()) - cores) < 2.0 and split["user"] > 0, split
        assert abs(s["machine_busy_pct"] - (cores - split["idle"] - split["iowait"])) < 2.0, s
    assert "(a) CAS transitions" in run.stdout
    probed = [s for s in summaries if s["probe_per_s"] is not None]
    assert [(s["kind"], s["clients"]) for s in probed] == [("batch", 4)], summaries
    assert probed[0]["probe_p50_ms"] is not None and probed[0]["probe_errors"] == 0, probed
    # the second probe client writes through a follower (the URLs start at the leader's)
    assert probed[0]["probe_follower_p99_ms"] is not None, probed
    assert "(e) high-lane probe during (d)" in run.stdout
    assert not (tmp_path / "docs").exists()
