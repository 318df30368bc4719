"""What the apply's speed-ups of issue 14, round five, must not change.

The event of a created or moved object is an `Event` struct (cluster/core/event.py):
it must read, compare and encode exactly as the dict it replaces, for every
reader (msgspec for snapshots, orjson for the API, the feed and the Redis stream);
a snapshot must not depend on whether a history holds `Event`s or the dicts a
snapshot loads as. A history staged in chunks keeps what a plain tuple keeps
(test_engine_round4.py's property test checks the shape). A record whose data is
the request's payload itself must never see it changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.core import codec
from cluster.core.event import KEYS, Event, json_default, plain
from cluster.core.history import appended, events
from cluster.core.records import iso_ms
from cluster.events.window import feed_event

from .engine_driver import Driver

_json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
)
_json = st.recursive(
    _json_scalars,
    lambda inner: (st.lists(inner, max_size=3)
                   | st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=12,
)
_names = st.text(max_size=10)


@st.composite
def _events(draw: st.DrawFn) -> tuple[Event, dict[str, Any]]:
    values = (
        draw(st.integers(0, 2**63 - 1)), draw(_names), draw(_names),
        draw(st.sampled_from(["created", "transition"])), draw(_names),
        draw(st.none() | _names), draw(st.none() | _names), draw(st.integers(1, 2**40)),
        draw(st.none() | st.dictionaries(st.text(max_size=6), _json, max_size=4)), draw(_names),
    )
    return Event(*values), dict(zip(KEYS, values, strict=True))


@settings(max_examples=300, deadline=None)
@given(_events())
def test_an_event_encodes_and_reads_as_the_dict_it_stands_for(
    pair: tuple[Event, dict[str, Any]],
) -> None:
    event, as_dict = pair
    # the JSON every reader writes, byte for byte (floats included: orjson and msgspec
    # differ on some, and each reader keeps its own encoder)
    assert msgspec.json.encode(event) == msgspec.json.encode(as_dict)
    assert orjson.dumps(event, default=json_default) == orjson.dumps(as_dict)
    assert orjson.dumps({"event": event}, default=json_default) == orjson.dumps({"event": as_dict})
    assert feed_event(event).frame == feed_event(as_dict).frame
    # a read-only mapping of the same keys, in the same order, equal to the dict
    assert list(event.as_dict().items()) == list(as_dict.items())
    assert isinstance(event, Mapping) and list(event) == list(as_dict) and len(event) == 10
    assert {**event} == as_dict and dict(event) == as_dict and plain(event) == as_dict
    assert event == as_dict and as_dict == event
    assert not event != as_dict  # noqa: SIM202 (__ne__ itself)
    assert event == Event(*event.values())
    for key in KEYS:
        assert key in event and event[key] == as_dict[key] and event.get(key) == as_dict[key]
    assert "reason" not in event and event.get("reason", 7) == 7
    with pytest.raises(KeyError):
        event["from_"]
    # a snapshot's history decodes to the dict
    assert msgspec.json.decode(msgspec.json.encode((event,))) == [as_dict]


def test_an_event_differs_from_a_dict_that_differs() -> None:
    values = (1, "m", "o", "transition", "t", "a", "b", 2, {"x": 1}, "now")
    event = Event(*values)
    other = dict(zip(KEYS, values, strict=True))
    other["to"] = "c"
    assert event != other and other != event
    assert event != {**other, "to": "b", "reason": "r"}
    assert event != values and event != Event(*values[:-1], "later")


def test_orjson_still_refuses_what_it_cannot_write() -> None:
    with pytest.raises(TypeError):
        orjson.dumps({"x": object()}, default=json_default)


HISTORY_MACHINE = """
history: 20
states:
  a: {}
transitions:
  create: {from: null, to: a}
  touch: {from: a}
  swap: {from: a, data: replace}
  stamp: {from: a, set: {stamped: "${now}"}}
  make: {from: null, to: a, set: {stamped: "${now}"}}
  restamp: {from: a, data: replace, set: {stamped: "${now}"}}
"""


def test_a_snapshot_is_the_same_whether_a_history_holds_events_or_loaded_dicts() -> None:
    driver = Driver()
    driver.machine("h", HISTORY_MACHINE)
    assert driver.move("h", "x", "create").ok
    driver.moves("h", "x", "touch", 40)  # 41 events, 20 kept (staged, all Events)
    blob = codec.dumps(driver.state)
    loaded = Driver(codec.loads(blob))
    loaded.index, loaded.now = driver.index, driver.now
    for d in (driver, loaded):
        d.moves("h", "x", "touch", 5)  # the loaded history: 15 dicts (decoded) then 5 Events
    mixed = events(loaded.state.histories[("h", "x")])
    assert {e.__class__ for e in mixed} == {dict, Event}
    assert {e.__class__ for e in events(driver.state.histories[("h", "x")])} == {Event}
    assert codec.dumps(loaded.state) == codec.dumps(driver.state)
    newest = driver.state.history("h", "x", limit=100)
    assert newest == loaded.state.history("h", "x", limit=100)
    assert all(e.__class__ is dict for e in newest)  # the history API's events are plain dicts
    assert orjson.dumps(newest) == orjson.dumps(loaded.state.history("h", "x", limit=100))


def test_outcomes_carry_events_that_render_as_before() -> None:
    driver = Driver()
    driver.machine("h", HISTORY_MACHINE)
    created = driver.move("h", "x", "create", {"a": 1.5e300})
    event = created.events[0]
    assert event.__class__ is Event and created.body["event"] is event
    assert orjson.dumps(created.body, default=json_default) == orjson.dumps(
        {"object": created.record.to_json(), "event": event.as_dict()})
    assert event["from"] is None and event["to"] == "a" and event["kind"] == "created"
    # idempotent replays answer with the body as it was (a dict, decoded from the record)
    first = driver.move("h", "x", "touch", {"n": 1}, key="k1")
    again = driver.move("h", "x", "touch", {"n": 1}, key="k1")
    assert again.body["event"] == first.body["event"] and again.body["event"].__class__ is dict


def test_a_payload_kept_as_the_record_data_is_never_changed() -> None:
    """`resulting_data` keeps the payload dict itself as the data of a replaced (or
    merged into empty) object when `set` adds nothing; with `set`, a copy."""
    driver = Driver()
    driver.machine("h", HISTORY_MACHINE)
    payload = {"k": "v"}
    assert driver.move("h", "x", "create", payload).ok  # merge into nothing: the payload
    record = driver.state.get_object("h", "x")
    assert record is not None and record.data is payload
    stamped = driver.move("h", "x", "stamp", payload)  # merge with set: a new dict
    assert stamped.ok and payload == {"k": "v"}
    assert stamped.record.data == {"k": "v", "stamped": iso_ms(driver.now)}
    assert record.data == {"k": "v"}  # the earlier record is as it was
    second = {"only": 1}
    assert driver.move("h", "x", "swap", second).ok
    assert driver.state.get_object("h", "x").data is second  # type: ignore[union-attr]
    # with `set`, never the payload: created, replaced
    for name, oid in (("make", "y"), ("restamp", "x")):
        given_data = {"g": name}
        outcome = driver.move("h", oid, name, given_data)
        assert outcome.ok and given_data == {"g": name}, outcome.error
        assert outcome.record.data == {"g": name, "stamped": iso_ms(driver.now)}
    # the events hold the payloads as they came
    assert [e["data"] for e in driver.state.history("h", "x")] == [
        {"g": "restamp"}, {"only": 1}, {"k": "v"}, {"k": "v"}]


@settings(max_examples=200, deadline=None)
@given(start=st.integers(0, 40), keep=st.integers(1, 120), appends=st.integers(0, 400))
def test_a_long_run_of_appends_keeps_the_newest_events(start: int, keep: int, appends: int) -> None:
    """Many chunks in and out (test_engine_round4 varies `keep`; this runs longer)."""
    history: Any = tuple({"index": n} for n in range(start))
    for n in range(start, start + appends):
        history = appended(history, {"index": n}, keep)
    total = start + appends
    expected = list(range(max(0, total - keep) if appends else 0, total))
    assert [e["index"] for e in events(history)] == expected
