"""Snapshots of a big state and the cyclic GC (issue 14, item 5: a million objects).

- a decoded state is frozen before the GC is enabled again, so the first
  allocation afterwards does not start a collection over every container the
  decode made (~4 s at 1M objects);
- the node's periodic collection skips while a decode has the
  GC paused (`gc.collect()` ignores `gc.disable()`: it walked the half-built
  state, 5 s with the GIL held, while a restored node loaded its dump);
- two threads pausing the GC at once leave it enabled when both are done.
"""

from __future__ import annotations

import gc
import threading

from cluster import gc_policy
from cluster.bench.memory import _apply_all
from cluster.core import codec
from cluster.core.engine import apply
from cluster.core.entries import Entry, PutMachine
from cluster.core.state import ClusterState
from schema_lang import load_example


def _blob(objects: int) -> bytes:
    state = ClusterState()
    apply(state, Entry(PutMachine("lock", load_example("lock")), at_ms=1_800_000_000_000, index=1))
    index, _ = _apply_all(state, "create", objects, 2, None)
    _apply_all(state, "acquire", objects, index, {"owner": "w"})
    return codec.dumps(state)


def test_a_decoded_state_is_frozen_before_the_gc_runs_again() -> None:
    blob = _blob(3000)
    gc.collect()
    young_before = gc.get_count()[0]
    frozen_before = gc.get_freeze_count()
    state = codec.loads(blob)
    assert gc.isenabled()
    # the decode made ~9 tracked containers per object; none is left young
    assert gc.get_count()[0] - young_before < 1000
    assert gc.get_freeze_count() - frozen_before > 3 * 3000
    assert codec.dumps(state) == blob


def test_the_periodic_collection_skips_while_a_snapshot_has_the_gc_paused() -> None:
    with codec.gc_paused():
        garbage = [[] for _ in range(10)]
        for a, b in zip(garbage, garbage[1:], strict=False):
            a.append(b)
            b.append(a)  # cycles: what a collection would walk
        assert gc_policy.collect_and_freeze() == 0.0
    assert gc.isenabled()


def test_two_threads_pausing_the_gc_leave_it_enabled() -> None:
    assert gc.isenabled()
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with codec.gc_paused():
            entered.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    with codec.gc_paused():
        thread.start()
        entered.wait(5)
    assert not gc.isenabled()  # the other thread is still inside
    release.set()
    thread.join()
    assert gc.isenabled()
