"""Encoding a snapshot leaves the process's other threads running, and its periodic
collection too.

A node writes its dumps from a child process (storage/dump_child.py), but the
encoder (`codec.dump_parts`, `write_snapshot`) is also run by threads of a
process (`codec.dumps` in `fsmcluster bench memory`; a node's own dump before round
thirteen). An encoder call holds the GIL from start to end: with 2,000
histories of 100 events in one call, the other threads stopped for 132 ms. Here
a thread that wakes every millisecond measures the longest time it was kept from
running while a dump is written.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from cluster.core import codec
from cluster.core.state import ClusterState
from cluster.storage.snapshot_file import read_snapshot, write_snapshot

OBJECTS = 2_000
HISTORY = 100  # a machine's default `history`
LONGEST_STALL = 0.08  # seconds; 8-10 ms here; one call for the whole table: ~240 ms


def big_histories() -> ClusterState:
    state = ClusterState()
    data = {"value": "x" * 1_000}
    for i in range(OBJECTS):
        state.histories[("doc", f"d{i}")] = tuple(
            {"index": n, "machine": "doc", "object": f"d{i}", "kind": "transition",
             "transition": "edit", "from": "draft", "to": "draft", "version": n,
             "data": data, "at": "2026-12-02T00:00:00.000Z"}
            for n in range(HISTORY)
        )
    return state


def test_a_dump_never_stops_the_other_threads_for_long(tmp_path: Path) -> None:
    state = big_histories()
    stop = threading.Event()
    gaps: list[float] = []

    def poller() -> None:  # what the Raft thread does between messages
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    thread = threading.Thread(target=poller)
    thread.start()
    try:
        time.sleep(0.02)
        write_snapshot(tmp_path / "dump", state, [(b"", 7, 1)])
    finally:
        stop.set()
        thread.join()
    assert max(gaps) < LONGEST_STALL, f"the dump stopped another thread for {max(gaps) * 1000:.0f} ms"
    restored, raft_data = read_snapshot(tmp_path / "dump")
    assert codec.dumps(restored) == codec.dumps(state)
    assert raft_data == [(b"", 7, 1)]


def test_the_bytes_do_not_depend_on_where_the_slices_fall() -> None:
    state = big_histories()
    expected = codec.dumps(state)
    saved = codec.SLICE_SECONDS
    try:
        codec.SLICE_SECONDS = 1e-9  # one item a call
        assert codec.dumps(state) == expected
        codec.SLICE_SECONDS = 10.0  # doubling from the first slice
        assert codec.dumps(state) == expected
    finally:
        codec.SLICE_SECONDS = saved


def test_the_periodic_collection_goes_on_while_a_dump_is_written(tmp_path: Path) -> None:
    state = big_histories()
    results: list[bool] = []
    thread = threading.Thread(target=write_snapshot, args=(tmp_path / "dump", state, [(b"", 7, 1)]))
    thread.start()
    while thread.is_alive():
        results.append(codec.collect_unless_paused())  # what gc_policy runs every 0.1 s
        time.sleep(0.005)
    thread.join()
    assert results, "the dump finished before a collection was tried"
    assert all(results), f"{results.count(False)} of {len(results)} collections were skipped"
