"""`fsmcluster bench memory`: the lock machine at scale, in one process.

Creates N lock objects through the engine (batches of 1,000 `create`s), then
acquires every one (so each holds data, a lease deadline and two events), and
reports the resident memory per object after each step, the snapshot size,
and the time to encode and decode the snapshot (`cluster.core.codec`, what a
node writes on log compaction and what a restarting node reads). Then it writes
the dump as a node does, from a forked child (`cluster.storage.dump_child`): what
the fork cost the forking thread, how long the child took, and how much memory
the child came to hold privately (pages copied on write: the price of the fork).
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schema_lang import load_example

from ..core import codec
from ..core.engine import apply
from ..core.entries import Batch, Entry, PutMachine, Transition
from ..core.state import ClusterState
from ..storage.dump_child import DumpChild
from ..storage.snapshot_file import write_snapshot

CHUNK = 1000


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class MemoryResult:
    objects: int
    bytes_per_object_created: float
    bytes_per_object_acquired: float
    create_per_s: float
    acquire_per_s: float
    snapshot_bytes: int
    snapshot_encode_s: float
    snapshot_decode_s: float
    snapshot_encode_cpu_s: float
    snapshot_decode_cpu_s: float
    fresh_decode_s: float  # the same bytes decoded by a new process, as a restoring node does
    fork_s: float  # what forking the dump's child cost the calling thread
    forked_dump_s: float  # from the fork to the child's exit, the dump written and synced
    forked_private_bytes: int  # the most memory the child held privately (copied on write)
    forked_from_bytes: int  # the parent's resident memory when it forked

    def lines(self) -> list[str]:
        return [
            f"objects                                 {self.objects:>14,}",
            f"resident bytes/object after create      {self.bytes_per_object_created:>14,.0f}",
            f"resident bytes/object after acquire     {self.bytes_per_object_acquired:>14,.0f}",
            f"applied creates/s (batches of {CHUNK})    {self.create_per_s:>14,.0f}",
            f"applied acquires/s (batches of {CHUNK})   {self.acquire_per_s:>14,.0f}",
            f"snapshot size, bytes                    {self.snapshot_bytes:>14,}"
            f"  ({self.snapshot_bytes / self.objects:,.0f} per object)",
            f"snapshot encode (codec.dumps), s        {self.snapshot_encode_s:>14.2f}"
            f"  ({self.snapshot_encode_cpu_s:.2f} CPU s)",
            f"snapshot decode (codec.loads), s        {self.snapshot_decode_s:>14.2f}"
            f"  ({self.snapshot_decode_cpu_s:.2f} CPU s)",
            f"snapshot decode in a fresh process, s   {self.fresh_decode_s:>14.2f}",
            f"dump by a forked child: fork, ms        {self.fork_s * 1000:>14.1f}",
            f"dump by a forked child: written in, s   {self.forked_dump_s:>14.2f}",
            f"dump by a forked child: private MB      {self.forked_private_bytes / 2**20:>14,.0f}"
            f"  (the parent: {self.forked_from_bytes / 2**20:,.0f} MB resident)",
        ]


def _apply_all(state: ClusterState, transition: str, objects: int, index: int,
               data: dict[str, str] | None) -> tuple[int, float]:
    started = time.perf_counter()
    for start in range(0, objects, CHUNK):
        ops = tuple(Transition("lock", f"lock-{i:07d}", transition, data)
                    for i in range(start, min(objects, start + CHUNK)))
        outcome = apply(state, Entry(Batch(ops), at_ms=1_800_000_000_000 + index, index=index))
        if any(not r.ok for r in outcome.results):
            raise RuntimeError(f"{transition} refused: {outcome.results[0].error}")
        index += 1
    return index, time.perf_counter() - started


def run_memory(objects: int) -> MemoryResult:
    gc.collect()
    state = ClusterState()
    apply(state, Entry(PutMachine("lock", load_example("lock")), at_ms=1_800_000_000_000, index=1))
    gc.collect()
    base = rss_bytes()
    index, create_s = _apply_all(state, "create", objects, 2, None)
    gc.collect()
    created = rss_bytes()
    index, acquire_s = _apply_all(state, "acquire", objects, index, {"owner": "worker-1"})
    gc.collect()
    acquired = rss_bytes()
    started, cpu = time.perf_counter(), time.process_time()
    blob = codec.dumps(state)
    encoded_bytes = len(blob)
    encode_s, encode_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    restored = codec.loads(blob)  # kept until timed: freeing 1M objects is not decoding them
    decode_s, decode_cpu = time.perf_counter() - started, time.process_time() - cpu
    del restored
    fresh_s = decode_in_fresh_process(blob)
    del blob
    return MemoryResult(
        objects, (created - base) / objects, (acquired - base) / objects,
        objects / create_s, objects / acquire_s, encoded_bytes, encode_s, decode_s, encode_cpu, decode_cpu,
        fresh_s, *dump_by_forked_child(state),
    )


def dump_by_forked_child(state: ClusterState) -> tuple[float, float, int, int]:
    """(fork seconds, seconds until the child exited, the child's peak private memory,
    the parent's resident memory)."""
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "raft.snapshot"
        raft_data: tuple[Any, ...] = ((b"", 1, 1), (b"", 0, 1), set())
        resident = rss_bytes()
        started = time.perf_counter()
        child = DumpChild.start(lambda: write_snapshot(dump, state, raft_data))
        fork_s = time.perf_counter() - started
        private = 0
        while child.poll() is None:
            private = max(private, _private_bytes(child.pid))
            time.sleep(0.02)
        if child.outcome:
            raise RuntimeError(f"the forked dump failed: {child.outcome}")
        return fork_s, time.perf_counter() - started, private, resident


def _private_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return sum(int(line.split()[1]) * 1024 for line in f if line.startswith("Private_"))
    except (FileNotFoundError, ProcessLookupError):
        return 0  # it has just exited


_DECODE = """
import sys, time
from cluster.core import codec
blob = open(sys.argv[1], "rb").read()
started = time.perf_counter()
codec.loads(blob)
print(time.perf_counter() - started)
"""


def decode_in_fresh_process(blob: bytes) -> float:
    """Seconds a new process takes for `codec.loads(blob)`: no other state in its heap, as a
    node loading a snapshot at start (the in-process figure shares memory with the state
    the bench built)."""
    with tempfile.NamedTemporaryFile(suffix=".snapshot") as f:
        f.write(blob)
        f.flush()
        out = subprocess.run([sys.executable, "-c", _DECODE, f.name], check=True,
                             capture_output=True, text=True, timeout=600)
    return float(out.stdout.strip())


def main(objects: int) -> int:
    print(f"fsmcluster memory benchmark: {objects:,} lock objects in one process")
    for line in run_memory(objects).lines():
        print(line)
    return 0
