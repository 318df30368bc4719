"""Medians over rounds, the result table (terminal and Markdown), the PNG chart,
and the generated section of docs/BENCHMARKS.md."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compare import Measurement, RunReport
from .loadgen import MACHINE_FIELDS

LABELS = {"cas": "(a) CAS transitions", "read": "(b) linearizable reads",
          "mix": "(c) 90/10 read/write", "batch": "(d) batches of 100"}
PROBE_LABEL = "(e) high-lane probe during (d)"
SYSTEM_NAMES = {"fsm": "fsmcluster", "etcd": "etcd"}


@dataclass(frozen=True, slots=True)
class Summary:
    system: str
    kind: str
    clients: int
    rounds: int
    ops_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    conflicts: int
    errors: int
    refused: int
    generator_cpu_pct: float
    server_cpu_pct: float  # all watched processes together, of one core
    machine_busy_pct: float
    first_error: str | None
    all_ops: tuple[float, ...]
    # the high-lane probe beside the load (probe.py): None when it did not run
    probe_per_s: float | None = None
    probe_p50_ms: float | None = None
    probe_p99_ms: float | None = None
    probe_max_ms: float | None = None
    probe_follower_p99_ms: float | None = None  # of the probe clients writing through a follower
    probe_refused: int = 0
    probe_errors: int = 0
    # where the machine's time went (user, system, idle, iowait, ...: loadgen.machine_split)
    machine_pct: dict[str, float] = field(default_factory=dict)


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(measurements: list[Measurement]) -> list[Summary]:
    groups: dict[tuple[str, str, int], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.system, m.kind, m.clients), []).append(m)
    out = []
    for (system, kind, clients), ms in groups.items():
        rs = [m.result for m in ms]
        out.append(Summary(
            system, kind, clients, len(rs),
            ops_per_s=statistics.median(r.ops_per_s for r in rs),
            p50_ms=_median(r.percentile(50) for r in rs),
            p99_ms=_median(r.percentile(99) for r in rs),
            p999_ms=_median(r.percentile(99.9) for r in rs),
            conflicts=sum(r.conflicts for r in rs),
            errors=sum(r.errors for r in rs),
            refused=sum(r.refused for r in rs),
            generator_cpu_pct=statistics.median(r.generator_cpu_pct for r in rs),
            server_cpu_pct=statistics.median(sum(r.server_cpu_pct) for r in rs),
            machine_busy_pct=statistics.median(r.machine_busy_pct for r in rs),
            first_error=next((r.first_error for r in rs if r.first_error), None),
            all_ops=tuple(round(r.ops_per_s) for r in rs),
            machine_pct={name: statistics.median(r.machine_pct.get(name, 0.0) for r in rs)
                         for name in MACHINE_FIELDS},
            **_probe_summary(rs),
        ))
    return out


def _probe_summary(rs: list[Any]) -> dict[str, Any]:
    ran = [r for r in rs if r.probe_ok or r.probe_refused or r.probe_errors]
    if not ran:
        return {}
    return {
        "probe_per_s": statistics.median((r.probe_ok + r.probe_refused) / r.seconds for r in ran),
        "probe_p50_ms": _median(r.probe_percentile(50) for r in ran),
        "probe_p99_ms": _median(r.probe_percentile(99) for r in ran),
        "probe_max_ms": max((r.probe_latencies_ms[-1] for r in ran if r.probe_latencies_ms), default=None),
        "probe_follower_p99_ms": _median(r.probe_percentile(99, via_follower=True) for r in ran),
        "probe_refused": sum(r.probe_refused for r in ran),
        "probe_errors": sum(r.probe_errors for r in ran),
    }


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def table_rows(summaries: list[Summary]) -> list[list[str]]:
    by = {(s.system, s.kind, s.clients): s for s in summaries}
    keys = sorted({(s.kind, s.clients) for s in summaries},
                  key=lambda k: (list(LABELS).index(k[0]), k[1]))
    rows = []
    for kind, clients in keys:
        row = [LABELS[kind], str(clients)]
        for system in ("fsm", "etcd"):
            s = by.get((system, kind, clients))
            if s is None:
                row += ["–"] * 5
                continue
            row += [f"{s.ops_per_s:,.0f}", _ms(s.p50_ms), _ms(s.p99_ms), _ms(s.p999_ms),
                    f"{s.generator_cpu_pct:.0f} / {s.server_cpu_pct:.0f} / {s.machine_busy_pct:.0f}"]
        fsm, etcd = by.get(("fsm", kind, clients)), by.get(("etcd", kind, clients))
        row.append(f"{fsm.ops_per_s / etcd.ops_per_s:.2f}×" if fsm and etcd and etcd.ops_per_s else "–")
        rows.append(row)
    for kind, clients in keys:
        probes = [by.get((system, kind, clients)) for system in ("fsm", "etcd")]
        if any(p is not None and p.probe_per_s is not None for p in probes):
            rows.append(_probe_row(clients, probes))
    return rows


def _probe_row(clients: int, probes: list[Summary | None]) -> list[str]:
    """ops/s: the probe's requests/s; p999: its maximum; CPU column: refused / errors."""
    row = [PROBE_LABEL, str(clients)]
    for s in probes:
        if s is None or s.probe_per_s is None:
            row += ["–"] * 5
            continue
        row += [f"{s.probe_per_s:,.0f}", _ms(s.probe_p50_ms), _ms(s.probe_p99_ms), _ms(s.probe_max_ms),
                f"{s.probe_refused} refused / {s.probe_errors} errors"]
    return row + ["–"]


HEADER = ["workload", "clients",
          "fsm ops/s", "p50 ms", "p99 ms", "p999 ms", "fsm CPU% gen/servers/machine",
          "etcd ops/s", "p50 ms", "p99 ms", "p999 ms", "etcd CPU% gen/servers/machine",
          "fsm / etcd"]


def text_table(summaries: list[Summary]) -> str:
    rows = [HEADER] + table_rows(summaries)
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def markdown_table(summaries: list[Summary]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(summaries)]
    return "\n".join(lines)


def markdown_section(report: RunReport, summaries: list[Summary], command: str, chart: str | None) -> str:
    plan = report.plan
    lines = [
        f"Run of {report.started}, {report.seconds / 60:.1f} min: `{command}`",
        "",
        f"Plan: systems {', '.join(plan.systems)}; {plan.keys:,} keys; rounds {plan.rounds} "
        f"(alternating per point); {plan.warmup:g} s warmup + {plan.duration:g} s measured per point; "
        f"{plan.processes} generator processes. Figures are medians over rounds; "
        "ops/s counts committed transitions (a batch counts its transitions) or reads; "
        "a failed compare (conflict) is not an operation. Client w talks to node w mod 3, "
        "counted from the leader, so a 1-client point runs on each system's leader.",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in report.conditions.items()),
        "",
        markdown_table(summaries),
        "",
        "CPU columns are % of one core: the load generator's processes, the three servers "
        "together, and the whole machine (of 100 × cores).",
    ]
    if any(s.probe_per_s is not None for s in summaries):
        lines.append(
            f"{PROBE_LABEL}: {plan.probe_clients} extra clients, each writing one object every "
            "50 ms beside the batch load (fsmcluster: a `put` with `X-Priority: high`; etcd, "
            "which has no lanes: a plain put); its ops/s column is their requests/s, p999 "
            "their maximum, and the CPU columns count their 429s and errors over all rounds. "
            "While the high lane is in use, fsmcluster's leader lets only `--log-budget` bytes "
            "of bulk work into its log ahead of its apply (docs/OPERATIONS.md), so the batch "
            "points the probe runs beside pay that price in throughput (docs/BENCHMARKS.md, "
            "round eleven).")
        lines += [f"- {s.system} {PROBE_LABEL} c={s.clients}: p99 through a follower "
                  f"{_ms(s.probe_follower_p99_ms)} ms (all: {_ms(s.probe_p99_ms)} ms)"
                  for s in summaries if s.probe_follower_p99_ms is not None]
    errors = [s for s in summaries if s.errors]
    for s in errors:
        lines.append(f"- {s.system} {s.kind} c={s.clients}: {s.errors} errors, first: `{s.first_error}`")
    for s in [s for s in summaries if s.refused]:
        lines.append(f"- {s.system} {s.kind} c={s.clients}: {s.refused} requests refused with 429 "
                     "over all rounds (each client then waited 1 s; latencies count admitted requests)")
    lines += [f"- {note}" for note in report.notes]
    lines.append("")
    lines.append("Per-round ops/s: " + "; ".join(
        f"{s.system} {s.kind} c={s.clients}: {', '.join(map(str, s.all_ops))}"
        for s in sorted(summaries, key=lambda s: (s.kind, s.clients, s.system))))
    if chart:
        lines += ["", f"![throughput and p99 latency]({chart})"]
    return "\n".join(lines)


def write_docs_section(path: Path, marker: str, body: str) -> None:
    """Replace the text between `<!-- bench:MARKER -->` markers, appending them if absent."""
    start, end = f"<!-- bench:{marker}:start -->", f"<!-- bench:{marker}:end -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{body}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def write_chart(summaries: list[Summary], path: Path) -> bool:
    """A PNG: ops/s and p99 per workload against clients. False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    kinds = [k for k in LABELS if any(s.kind == k for s in summaries)]
    fig, axes = plt.subplots(2, len(kinds), figsize=(4 * len(kinds), 7), squeeze=False)
    for col, kind in enumerate(kinds):
        for system, style in (("fsm", "o-"), ("etcd", "s--")):
            points = sorted((s.clients, s) for s in summaries if s.kind == kind and s.system == system)
            if not points:
                continue
            xs = [c for c, _ in points]
            axes[0][col].plot(xs, [s.ops_per_s for _, s in points], style, label=SYSTEM_NAMES[system])
            axes[1][col].plot(xs, [s.p99_ms or 0 for _, s in points], style, label=SYSTEM_NAMES[system])
        axes[0][col].set_title(LABELS[kind])
        for row, ylabel in ((0, "ops/s (median)"), (1, "p99 latency, ms")):
            ax: Any = axes[row][col]
            ax.set_xscale("log", base=2)
            ax.set_xlabel("concurrent clients")
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
            ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def to_json(report: RunReport, summaries: list[Summary]) -> dict[str, Any]:
    return {
        "started": report.started,
        "plan": {k: getattr(report.plan, k) for k in report.plan.__dataclass_fields__},
        "conditions": report.conditions,
        "notes": report.notes,
        "summaries": [{k: getattr(s, k) for k in s.__dataclass_fields__} for s in summaries],
    }
