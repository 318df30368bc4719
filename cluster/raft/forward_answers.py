"""A follower's high-lane writes, answered with the outcome the leader applied.

A follower forwards its high-lane commands to the leader (`HighForwarder`,
log_gate.py), and pysyncobj answered them only once the follower itself had applied
them: after the leader committed the entry, after its next round told the follower
so, and after the follower had applied every entry before it. Under bulk load that
made a lock renewal sent to a follower wait longer than one sent to the leader
(docs/BENCHMARKS.md, round ten).

Now the leader also sends the follower the outcome it applied (`FORWARD_RESULT`),
and the follower answers with whichever comes first: that outcome, or its own
apply's (pysyncobj's path, kept as it was: it still answers if the leader's message
never comes, e.g. the leader fails right after applying).

Why the answer is the same and as safe:
- The leader applies only committed entries: the write is in the log of a majority,
  synced (SPEC 1), before either answer.
- Apply is deterministic: the leader's outcome is the one the follower computes.
  Only the feed's events are left out of the message (no answer shows them).
- A linearizable read on the follower waits for a read index at least the write's
  (read_index.py), so it sees the write. A `consistency=stale` read there may not
  yet, as stale reads may lag (it says how far: `X-Raft-Applied-Index`).

Rolling upgrades: a follower without this code ignores the message, a leader without it
never sends it, and the message names the layout of the classes the outcome is pickled
with (`LAYOUT`), so a follower whose classes differ leaves the answer to its own apply.

On the leader (`LeaderAnswers`), every piece runs on the Raft thread: the forwarded
command is remembered by its bytes as logged (stamped) and answered when an entry
with those bytes is applied; leadership lost, the rest is dropped and the
followers' own applies answer. Equal bytes are answered in the order they were
logged, which is the order they are applied.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import pickle
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from cluster.core.event import Event
from cluster.core.outcome import Outcome, Rejection
from cluster.core.records import ObjectRecord, PendingChange, TaskRecord

log = logging.getLogger("fsmcluster.raft")

FORWARD_RESULT = "fsm_forward_result"
MAX_WAITING = 4096  # forwarded commands the leader remembers; past it, it forgets the oldest

Send = Callable[[Any, dict[str, Any]], None]


def _layout() -> str:
    """The fields, in order, of every class an outcome is pickled with (a pickle names a
    class and lists its values by position): a leader and a follower whose classes differ,
    in a rolling upgrade, do not take each other's outcomes."""
    shapes = [(cls.__qualname__, cls.__struct_fields__)
              for cls in (Outcome, ObjectRecord, TaskRecord, PendingChange, Event)]
    shapes.append((Rejection.__qualname__, tuple(f.name for f in dataclasses.fields(Rejection))))
    return hashlib.sha256(repr(shapes).encode()).hexdigest()[:16]


LAYOUT = _layout()


class LeaderAnswers:
    """The leader's side: which applied entries a follower is waiting for."""

    def __init__(self) -> None:
        self._waiting: dict[bytes, deque[tuple[Any, int]]] = {}
        self._count = 0

    def __bool__(self) -> bool:
        return self._count > 0

    def expect(self, logged: bytes, node: Any, request_id: int) -> None:
        """`logged`: the command's bytes as the leader put them in its log. Past
        `MAX_WAITING` the oldest is forgotten (e.g. a command pysyncobj refused as its queue
        was full: never applied, its follower told so by pysyncobj's reply)."""
        if self._count >= MAX_WAITING:
            oldest = next(iter(self._waiting))
            waiting = self._waiting[oldest]
            waiting.popleft()
            if not waiting:
                del self._waiting[oldest]
            self._count -= 1
        self._waiting.setdefault(logged, deque()).append((node, request_id))
        self._count += 1

    def applied(self, command: bytes, result: Any, send: Send) -> None:
        """An entry was applied on this leader: answer the follower waiting for it, if any."""
        waiting = self._waiting.get(command)
        if waiting is None:
            return
        node, request_id = waiting.popleft()
        if not waiting:
            del self._waiting[command]
        self._count -= 1
        send(node, {"type": FORWARD_RESULT, "request_id": request_id, "layout": LAYOUT,
                    "outcome": pickle.dumps(without_events(result), protocol=4)})

    def clear(self) -> None:
        """Leadership lost: the entries may still commit, and the followers answer them."""
        self._waiting.clear()
        self._count = 0


def without_events(result: Any) -> Any:
    """The outcome (or a group's outcomes) as the answer needs it: the feed's events aside."""
    if isinstance(result, Outcome):
        return msgspec.structs.replace(result, events=()) if result.events else result
    if isinstance(result, list):
        return [without_events(r) for r in result]
    return result


def read_result(message: dict[str, Any]) -> tuple[int, Any] | None:
    """A `FORWARD_RESULT` message's request id and outcome; None if it cannot be read, or
    comes from a leader whose outcome classes differ from ours (the follower's own apply
    answers then)."""
    request_id, blob = message.get("request_id"), message.get("outcome")
    if not isinstance(request_id, int) or not isinstance(blob, bytes):
        return None
    if message.get("layout") != LAYOUT:
        return None
    try:
        return request_id, pickle.loads(blob)
    except Exception:  # e.g. a leader of another version: its message is only a shortcut
        log.warning("a leader's answer to forwarded request %d could not be read", request_id)
        return None


class FirstAnswer:
    """A pysyncobj callback that passes on only the first of the answers it gets."""

    __slots__ = ("callback", "done", "pending", "request_id")

    def __init__(self, callback: Any, request_id: int, pending: dict[int, FirstAnswer]) -> None:
        self.callback = callback
        self.request_id = request_id
        self.pending = pending  # the follower's table of answers it may still get early
        self.done = False

    def __call__(self, result: Any, error: int) -> bool:
        """Returns whether this answer was the first."""
        if self.done:
            return False
        self.done = True
        self.pending.pop(self.request_id, None)
        self.callback(result, error)
        return True
