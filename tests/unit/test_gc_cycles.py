"""The periodic collection still finds every unfrozen cycle of garbage.

It collects the young generations alone when the oldest holds no unfrozen
object (cheaper: a full collection also empties CPython's free lists). A cycle
that automatic collections moved to the oldest generation since the last freeze
must still be collected there, not frozen for good with the survivors.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from cluster.core import codec


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic GC frees it


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.collect()
    yield
    gc.unfreeze()  # the collection froze this test process's survivors


def test_a_young_cycle_is_collected() -> None:
    node = Node()
    gone = weakref.ref(node)
    del node
    assert codec.collect_unless_paused()
    assert gone() is None


def test_a_cycle_moved_to_the_oldest_generation_is_collected_not_frozen() -> None:
    node = Node()
    gone = weakref.ref(node)
    gc.collect(1)  # as an automatic collection would: the live cycle survives, moves up
    assert any(o is node for o in gc.get_objects(generation=2))
    del node
    assert codec.collect_unless_paused()
    assert gone() is None, "a cycle of garbage was frozen instead of collected"
