"""What applying one entry produced: a result for the proposer and events for the feed.

A business rejection (guard failed, wrong version, ...) is a value here, never an
exception: every node computes the same rejection for the same entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from .event import AnyEvent

Status = Literal["created", "applied", "pending", "ok", "rejected"]


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str  # a SPEC 4.9 error code, e.g. "version_conflict"
    message: str
    details: tuple[dict[str, Any], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "error": {"code": self.code, "message": self.message, "details": list(self.details)}
        }


class Rejected(Exception):
    """Raised inside the engine to abandon an entry; turned into a `Rejection` value."""

    def __init__(self, code: str, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.rejection = Rejection(code, message, tuple(details or ()))


class Outcome(msgspec.Struct, frozen=True, gc=False):
    """Built (twice) for every applied entry: a msgspec struct, built in C."""

    status: Status
    raw_body: dict[str, Any] = msgspec.field(default_factory=dict)  # the body, but for "object"
    error: Rejection | None = None
    events: tuple[AnyEvent, ...] = ()  # dicts, and the `Event`s of moves (event.py)
    results: tuple[Outcome, ...] = ()  # one per operation of a batch
    # an (immutable) object record: `body["object"]`, rendered only when someone asks.
    # Every node applies every entry, but only the node that answers the request
    # needs the JSON of the object, and it needs it on the asyncio thread, not the Raft one.
    record: Any = None

    @property
    def body(self) -> dict[str, Any]:
        return self.rendered()

    def rendered(self, summary: bool = False) -> dict[str, Any]:
        """The body; `summary`: its object as `ObjectRecord.summary_json` has it."""
        if self.record is None:
            return self.raw_body
        obj = self.record.summary_json() if summary else self.record.to_json()
        return {"object": obj, **self.raw_body}

    @property
    def ok(self) -> bool:
        return self.error is None

    @staticmethod
    def rejected(rejection: Rejection) -> Outcome:
        return Outcome(status="rejected", error=rejection)
