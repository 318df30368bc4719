"""The leader's log gate: normal work enters the Raft log only as fast as it is applied.

Raft applies its log in order, so an entry waits for every entry appended before
it. Without a gate each node kept up to two groups of bulk work (and its whole
admission limit, cluster/api/admission.py) in the log, and a high-lane entry
(a lock renewal) appended behind them waited for all of it: ~300 ms at 64
clients of batches. The priority queue has to be in front of the log, and the
log short.

On the leader every command passes the gate (`RaftMember._applyCommand`), its
own and those its followers forward. High-lane commands (ours, marked by a
`HighCallback`; a follower's, arriving as an `fsm_forward` message) and
commands that are not calls of a replicated method (membership changes, the
no-op) go straight to pysyncobj. Normal ones wait in a FIFO and are released on
the Raft thread, before pysyncobj appends its queue (`_checkCommandsToApply`),
while the log's unapplied bytes plus the next command stay within `budget`
(or the log is fully applied, so an oversized command still goes, alone). So
a high entry waits behind at most `budget` bytes of bulk work, whatever the
number of clients and nodes.

The tight budget costs bulk throughput (a follower applies less at a time, groups
are smaller), and it buys nothing while no one uses the high lane. So it holds
only while the high lane is in use: for `HIGH_ACTIVE_S` after a client's
high-lane command passed the gate (the leader's own or a follower's); otherwise
the budget is `IDLE_BUDGET_FACTOR` times wider. Timer ticks ride the high lane
too but do not count as use (`HighCallback(..., client=False)`): a cluster with
leases has them all the time.

Leader-side admission: a forwarded normal command is refused at once (pysyncobj's
`QUEUE_FULL`, which the follower answers as `429 overloaded`) when the gate's
oldest held command has waited `max_wait` seconds or the held bytes would pass
`max_held`: a follower's clients get 429 instead of piling work onto the leader.
The leader's own proposals are not refused here: its HTTP admission sees them
wait (their permits age) and refuses new ones.

A follower sends its high-lane commands as `fsm_forward` messages instead of
pysyncobj's `apply_command` (which has no room for a lane): the same reply
(`apply_command_response`, matched by pysyncobj's request counter), so its
callback completes as any forwarded command's does. A leader without this code
ignores the message (upgrade all members together, as for ReadIndex).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pysyncobj import FAIL_REASON

from .forward_answers import FirstAnswer, read_result

REGULAR_COMMAND = 0  # pysyncobj's _COMMAND_TYPE.REGULAR: a call of a replicated method
FORWARD_MESSAGE = "fsm_forward"
PASS, HELD, REFUSED = "pass", "held", "refused"
HIGH_ACTIVE_S = 5.0  # the tight budget holds this long after a client's high-lane command
IDLE_BUDGET_FACTOR = 8  # the budget while the high lane is idle, in multiples of `budget`


class HighCallback:
    """A pysyncobj callback marking its command as one of the high admission lane."""

    __slots__ = ("client", "fn")

    def __init__(self, fn: Callable[[Any, int], None], client: bool = True) -> None:
        self.fn = fn
        self.client = client  # a client's request (False: the leader's own timer tick)

    def __call__(self, result: Any, error: int) -> None:
        self.fn(result, error)


@dataclass(slots=True)
class _Held:
    at: float
    command: bytes
    callback: Any
    command_type: int | None
    size: int


class LogGate:
    """Thread-safe: `offer` runs on the asyncio thread (own commands) and on the Raft
    thread (forwarded ones); `release` and `drain` on the Raft thread."""

    def __init__(self, budget: int, max_wait: float, max_held: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget
        self.max_wait = max_wait
        self.max_held = max_held if max_held is not None else 64 * budget
        self.clock = clock
        self._lock = threading.Lock()
        self._held: deque[_Held] = deque()
        self.held_bytes = 0
        self.backlog_bytes = 0  # the log's unapplied bytes at the last release (a gauge)
        self.backlog_peak = 0  # ... and the largest seen
        self.released = 0
        self.refused = 0  # forwarded commands refused (QUEUE_FULL)
        self.high_seen_at = float("-inf")  # when a client's high-lane command last passed

    def note_high(self) -> None:
        """A client's high-lane command passed: keep the log short for a while."""
        self.high_seen_at = self.clock()

    def current_budget(self) -> int:
        """`budget` while the high lane is in use, else `IDLE_BUDGET_FACTOR` times it."""
        if self.clock() - self.high_seen_at < HIGH_ACTIVE_S:
            return self.budget
        return self.budget * IDLE_BUDGET_FACTOR

    @property
    def held(self) -> int:
        return len(self._held)

    def offer(self, command: bytes, callback: Any, command_type: int | None) -> str:
        """On the leader: PASS (append now), HELD (released later) or REFUSED (a forwarded
        command the caller answers with QUEUE_FULL)."""
        forwarded = command_type is None  # pysyncobj passes a forwarded command with its type byte
        kind = (command[0] if command else None) if forwarded else command_type
        if isinstance(callback, HighCallback):
            if callback.client:
                self.note_high()
            return PASS
        if kind != REGULAR_COMMAND:
            return PASS
        size = len(command)
        now = self.clock()
        with self._lock:
            if forwarded and self._held and (now - self._held[0].at > self.max_wait
                                             or self.held_bytes + size > self.max_held):
                self.refused += 1
                return REFUSED
            self._held.append(_Held(now, command, callback, command_type, size))
            self.held_bytes += size
        return HELD

    def release(self, backlog: int, append: Callable[[bytes, Any, int | None], object]) -> int:
        """Append held commands, oldest first, while `backlog` (the log's unapplied bytes)
        and the next command fit the budget; returns how many went."""
        self.backlog_bytes = backlog
        self.backlog_peak = max(self.backlog_peak, backlog)
        budget = self.current_budget()
        went = 0
        while True:
            with self._lock:
                if not self._held or (backlog and backlog + self._held[0].size > budget):
                    break
                item = self._held.popleft()
                self.held_bytes -= item.size
            append(item.command, item.callback, item.command_type)
            backlog += item.size
            went += 1
        self.released += went
        return went

    def drain(self, append: Callable[[bytes, Any, int | None], object]) -> None:
        """No longer the leader: hand everything held to pysyncobj (which forwards our own
        commands to the new leader and answers forwarded ones NOT_LEADER)."""
        with self._lock:
            items, self._held = list(self._held), deque()
            self.held_bytes = 0
        for item in items:
            append(item.command, item.callback, item.command_type)


def unapplied_bytes(log: Any, applied: int) -> int:
    """Bytes of the log's entries after index `applied` (pysyncobj entries: command, index, term)."""
    total, k = 0, len(log)
    while k > 0:
        command, index, _term = log[k - 1]
        if index <= applied:
            break
        total += len(command)
        k -= 1
    return total


class HighForwarder:
    """A follower's high-lane commands, sent to the leader as `fsm_forward` messages.

    `put` runs on the asyncio thread; `flush` on the Raft thread, where it registers the
    callback as pysyncobj does for `apply_command` (its private request counter and
    table of callbacks waiting for the leader's reply) and sends the message. The
    leader answers twice: pysyncobj's reply (the follower's own apply answers), and
    the outcome it applied (`answered`, forward_answers.py); the first answer counts.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._out: deque[tuple[bytes, Any]] = deque()
        self.sent = 0
        self.answered_early = 0  # answered with the leader's outcome, before our own apply
        self._pending: dict[int, FirstAnswer] = {}  # Raft thread only

    def put(self, command: bytes, callback: Any) -> None:
        with self._lock:
            self._out.append((command, callback))

    def flush(self, member: Any, local: Callable[[bytes, Any], object]) -> None:
        """`local(command, callback)`: this node leads now. Without a known leader the
        commands wait (as pysyncobj's with `commandsWaitLeader`; the proposer's timeout
        bounds it)."""
        while True:
            with self._lock:
                if not self._out or member._SyncObj__raftLeader is None:
                    return
                command, callback = self._out.popleft()
            leader = member._SyncObj__raftLeader
            if member._isLeader():
                local(command, callback)
            else:
                member._SyncObj__commandsLocalCounter += 1
                request_id = member._SyncObj__commandsLocalCounter
                first = FirstAnswer(callback, request_id, self._pending)
                member._SyncObj__commandsWaitingReply[request_id] = first
                self._pending[request_id] = first
                member._SyncObj__transport.send(leader, {"type": FORWARD_MESSAGE, "command": command,
                                                         "request_id": request_id})
                self.sent += 1

    def answered(self, message: dict[str, Any]) -> None:
        """The leader's `FORWARD_RESULT`: answer the command with it, unless answered already."""
        read = read_result(message)
        first = self._pending.get(read[0]) if read is not None else None
        if read is not None and first is not None and first(read[1], FAIL_REASON.SUCCESS):
            self.answered_early += 1
