"""An object's bounded history of events, appended without copying it whole each time.

A history keeps the newest `keep` events of an object (the machine's `history`,
100 by default), oldest first. Appending to a plain tuple copies the tuple: for
a full history that touches all 100 events (a reference count each, in memory
the cache no longer holds) and the old tuple's release touches them again. So a
long history is kept *staged*:

- a plain tuple of events (every short history, and what snapshots load), or
- `(skip, chunks, recent, held)`: the events are those of the `chunks` (tuples
  of events, `held` of them in all), but for the first `skip`, then `recent`.
  An append copies only `recent` (fewer than `RECENT` events) and, when the
  history is full, skips one more; once `recent` holds `RECENT` events it
  becomes the last chunk, and a chunk wholly skipped is dropped. An event is
  therefore copied into a new tuple at most `RECENT` times and never again
  (round four folded `recent` into one flat tuple of the whole history every
  `RECENT` appends: a copy and a release of all 100 events; measured with
  `Event`s across 1,000 objects, 1.05 then 0.88 us an append).

The two forms are told apart by the first item: an event is a dict or an
`Event`, a staged history starts with its `skip` (an int). Both are immutable,
so a reader on another thread sees a whole history. Readers take
`events(history)`; snapshots hold the plain events, so their format is unchanged.

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

from .event import AnyEvent

Event = AnyEvent  # a dict, or an `Event` (event.py) of a created or moved object
# a plain tuple of events, (skip, chunks, recent events, events in chunks), or a loaded Raw
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

RECENT = 16  # events appended before a staged history's recent events become a chunk


def events(history: History) -> tuple[Event, ...]:
    """The events of a history, oldest first."""
    if isinstance(history, Raw):
        return _decode_events(history)  # type: ignore[no-any-return]
    if not history or history[0].__class__ is not int:
        return history
    skip, chunks, recent, _ = history
    if len(chunks) == 1:
        return chunks[0][skip:] + recent  # type: ignore[no-any-return]
    held: list[Event] = []
    for chunk in chunks:
        held.extend(chunk)
    return (*held[skip:], *recent)


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
        skip, chunks, recent, held = 0, (history,), (event,), len(history)
    else:
        skip, chunks, recent, held = history
        recent = recent + (event,)
    excess = held - skip + len(recent) - keep
    if excess > 0:  # the oldest events drop out
        skip += excess
    if len(recent) < RECENT and skip < len(chunks[0]):
        return (skip, chunks, recent, held)
    return _rechunked(skip, chunks, recent, held)


def _rechunked(skip: int, chunks: tuple[tuple[Event, ...], ...], recent: tuple[Event, ...],
               held: int) -> History:
    """Drops the chunks wholly skipped, and makes a full `recent` the last chunk."""
    drop = 0
    while drop < len(chunks) and skip >= len(chunks[drop]):
        skip -= len(chunks[drop])
        held -= len(chunks[drop])
        drop += 1
    if drop == len(chunks):  # every chunk skipped: what is left is (part of) recent
        return recent[skip:]
    if len(recent) >= RECENT:
        return (skip, chunks[drop:] + (recent,), (), held + len(recent))
    return (skip, chunks[drop:], recent, held)
