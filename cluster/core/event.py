"""The event of a created or moved object: a struct that reads and encodes as the JSON object.

Every transition records one event (the entry's output, the object's history, the
feed). As a dict it was the costliest thing a transition built and, much later,
freed: ten keys, tracked by the cyclic GC for as long as a history holds it (so
every collection walked it), released in memory no cache holds any more. An
`Event` is a msgspec struct: built in C from ten positional values, untracked
by the GC (`gc=False`: it holds no cycles; its `data` is the request's data,
never changed), and freed as one object.

It is the SPEC 4.7 event and behaves as the dict did for every reader:
- msgspec (snapshots, codec.py) writes it as the same JSON object, key for key
  (`rename`: the field `from_` is the key "from"), so snapshot bytes do not
  depend on whether a history holds `Event`s or the dicts a snapshot loads as;
- orjson writes it through `json_default` (its `as_dict`), byte for byte the dict's JSON;
- it is a read-only `Mapping` (`event["from"]`, `.get`, `{**event}`), and equal
  to a mapping with the same keys and values.

Events with more keys (removed, emitted, task, vote, expired) stay dicts: they are
few, and their shapes vary. `ClusterState.history` hands out plain dicts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

KEYS = ("index", "machine", "object", "kind", "transition", "from", "to", "version", "data", "at")
_ATTRS = dict(zip(KEYS, ("index", "machine", "object", "kind", "transition", "from_", "to",
                         "version", "data", "at"), strict=True))
_astuple = msgspec.structs.astuple


class Event(msgspec.Struct, frozen=True, gc=False, rename={"from_": "from"}):
    index: int
    machine: str
    object: str
    kind: str
    transition: str
    from_: str | None
    to: str | None
    version: int
    data: Any
    at: str

    def as_dict(self) -> dict[str, Any]:
        """The event as the dict it stands for (its JSON's keys, in order)."""
        return dict(zip(KEYS, _astuple(self), strict=True))

    # -- a read-only Mapping of its JSON keys --------------------------------

    def __getitem__(self, key: str) -> Any:
        attr = _ATTRS.get(key)
        if attr is None:
            raise KeyError(key)
        return getattr(self, attr)

    def get(self, key: str, default: Any = None) -> Any:
        attr = _ATTRS.get(key)
        return default if attr is None else getattr(self, attr)

    def __contains__(self, key: Any) -> bool:
        return key in _ATTRS

    def __iter__(self) -> Iterator[str]:
        return iter(KEYS)

    def __len__(self) -> int:
        return len(KEYS)

    def keys(self) -> tuple[str, ...]:
        return KEYS

    def values(self) -> tuple[Any, ...]:
        return _astuple(self)  # type: ignore[no-any-return]

    def items(self) -> Iterator[tuple[str, Any]]:
        return zip(KEYS, _astuple(self), strict=True)

    def __eq__(self, other: Any) -> bool:
        if other.__class__ is Event:
            return _astuple(self) == _astuple(other)
        if isinstance(other, Mapping):
            return self.as_dict() == dict(other)
        return NotImplemented

    def __ne__(self, other: Any) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal


Mapping.register(Event)
AnyEvent = Mapping[str, Any] | Event  # what a history, an outcome or the feed holds


def json_default(value: Any) -> Any:
    """orjson's `default`: an `Event` is written as its dict (orjson knows no structs)."""
    if value.__class__ is Event:
        return value.as_dict()
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def plain(event: AnyEvent) -> dict[str, Any]:
    """An event as a plain dict (a dict event as it is)."""
    if event.__class__ is Event:
        return event.as_dict()  # type: ignore[union-attr]
    return event  # type: ignore[return-value]
