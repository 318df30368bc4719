"""Histories loaded from a snapshot stay encoded until their object is touched (cluster/core/history.py).

Decoding every history's event dicts was most of a 1M-object restore; most objects
are not touched soon after one. A loaded history must read, dump, refuse and go on
exactly as the decoded one would.
"""

from __future__ import annotations

from msgspec import Raw

from cluster.core import codec
from cluster.core.entries import Transition

from .engine_driver import Driver
from .test_engine_round4 import HISTORY_MACHINE


def _world() -> Driver:
    driver = Driver()
    driver.machine("h", HISTORY_MACHINE)
    for oid, touches in (("short", 3), ("staged", 57), ("untouched", 40)):
        assert driver.move("h", oid, "create").ok
        driver.moves("h", oid, "touch", touches)
    return driver


def _restored(driver: Driver) -> Driver:
    loaded = Driver(codec.loads(codec.dumps(driver.state)))
    loaded.index, loaded.now = driver.index, driver.now
    return loaded


def test_a_restore_decodes_no_history_and_reads_them_all_the_same() -> None:
    driver = _world()
    loaded = _restored(driver)
    assert all(isinstance(h, Raw) for h in loaded.state.histories.values())
    for oid in ("short", "staged", "untouched"):
        assert loaded.state.history("h", oid, limit=100) == driver.state.history("h", oid, limit=100)
    assert codec.dumps(loaded.state) == codec.dumps(driver.state)  # written back as it was read


def test_a_touched_history_goes_on_as_the_decoded_one() -> None:
    driver = _world()
    loaded = _restored(driver)
    for d in (driver, loaded):
        d.moves("h", "short", "touch", 20)
        d.moves("h", "staged", "touch", 5)
    assert not isinstance(loaded.state.histories[("h", "staged")], Raw)
    assert isinstance(loaded.state.histories[("h", "untouched")], Raw)
    assert codec.dumps(loaded.state) == codec.dumps(driver.state)
    assert loaded.state.history("h", "staged") == driver.state.history("h", "staged")


def test_a_refused_entry_leaves_a_loaded_history_encoded() -> None:
    loaded = _restored(_world())
    before = loaded.state.histories[("h", "untouched")]
    blob = codec.dumps(loaded.state)
    assert not loaded.run(Transition("h", "untouched", "leave")).ok
    assert loaded.state.histories[("h", "untouched")] is before
    assert codec.dumps(loaded.state) == blob
