"""An object's bounded history of events, appended without copying it whole each time.

A history keeps the newest `keep` events of an object (the machine's `history`,
100 by default), oldest first. Appending to a plain tuple copies the tuple: for
a full history that touches all 100 events (a reference count each, in memory
the cache no longer holds) and the old tuple's release touches them again
(measured: ~1.8 us an append across 1,000 objects, more than the rest of the
history work). So a long history is kept *staged* between copies:

- a plain tuple of events (every short history, and what snapshots load), or
- `(skip, older, recent)`: the events are `older[skip:] + recent`. An append
  copies only `recent` (fewer than `RECENT` events) and, when the history is
  full, skips one more of `older`; once `recent` holds `RECENT` events (or all
  of `older` is skipped) the two fold into one plain tuple again.

The two forms are told apart by the first item: an event is a dict, a staged
history starts with its `skip` (an int). Both are immutable, so a reader on
another thread sees a whole history. Readers take `events(history)`; snapshots
hold the plain events, so their format is unchanged.

A history loaded from a snapshot is a third form, `msgspec.Raw`: its JSON as
the snapshot holds it, decoded when the object is first touched (`events`,
`appended`) and written back to a snapshot as it is (`stored`). Decoding every
history's event dicts was most of a 1M-object restore, and most objects are
not touched soon after one.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Raw

Event = dict[str, Any]
# a plain tuple of events, (skip, older events, recent events), or a loaded Raw
History = tuple[Any, ...] | Raw

_decode_events = msgspec.json.Decoder(tuple[dict[str, Any], ...]).decode


def loaded(raw: Raw) -> Raw:
    """A history as a snapshot holds it, kept encoded (a copy: not a view of the whole snapshot)."""
    return raw.copy()


def stored(history: History) -> Any:
    """What a snapshot writes for `history`: its plain events (a loaded one as it was read)."""
    if history.__class__ is Raw or not history or history[0].__class__ is not int:
        return history
    return events(history)

RECENT = 16  # events appended before a staged history folds back into one tuple


def events(history: History) -> tuple[Event, ...]:
    """The events of a history, oldest first."""
    if isinstance(history, Raw):
        return _decode_events(history)  # type: ignore[no-any-return]
    if not history or history[0].__class__ is not int:
        return history
    skip, older, recent = history
    return older[skip:] + recent  # type: ignore[no-any-return]


def appended(history: History, event: Event, keep: int) -> History:
    """The history with `event` added, of at most the newest `keep` (>= 1) events."""
    if isinstance(history, Raw):
        history = _decode_events(history)
        assert isinstance(history, tuple)
    if not history or history[0].__class__ is not int:
        if len(history) < RECENT:  # short: a plain copy touches few events
            if len(history) >= keep:
                history = history[len(history) - keep + 1 :]
            return history + (event,)
        return _staged(0, history, (event,), keep)
    skip, older, recent = history
    return _staged(skip, older, recent + (event,), keep)


def _staged(skip: int, older: tuple[Event, ...], recent: tuple[Event, ...], keep: int) -> History:
    excess = len(older) - skip + len(recent) - keep
    if excess > 0:  # the oldest events drop out
        skip += excess
    if len(recent) < RECENT and skip < len(older):
        return (skip, older, recent)
    if skip <= len(older):  # fold: one plain tuple again
        return older[skip:] + recent
    return recent[skip - len(older) :]
