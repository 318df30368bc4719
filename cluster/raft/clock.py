"""The leader's clock: the one source of the timestamps entries are applied with.

Only the leader stamps entries (`RaftMember._applyCommand`): a follower forwards
its commands unstamped and the leader stamps them as it appends them to the log,
so a node whose clock is off can move the state's clock only while it leads.
Even then a forward leap of its wall clock is bounded: a stamp runs ahead of the
previous one by at most the monotonic time elapsed since, plus `LEAP_MS`, plus
1% (so a corrected clock is caught up with slowly instead of all at once), and a
clamp is logged. Stamps never go backwards (apply also takes the later of an
entry's time and the state's clock).
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
from collections.abc import Callable

log = logging.getLogger("fsmcluster.raft")

LEAP_MS = 1_000  # how far past the monotonic clock a stamp may run at once
CATCH_UP = 0.01  # ... plus this share of the elapsed time, to follow a corrected clock
WARN_EVERY_S = 10.0
REGULAR_COMMAND = 0  # pysyncobj's _COMMAND_TYPE.REGULAR: a call of a replicated method


class LeaderClock:
    """Thread-safe: stamps are taken on the asyncio thread (local proposals) and on the
    Raft thread (forwarded ones, ticks)."""

    def __init__(
        self,
        offset_ms: int = 0,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.offset_ms = offset_ms
        self._wall = wall
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last_stamp: int | None = None
        self._last_mono = 0.0
        self._warned_at = float("-inf")
        self.clamped = 0  # stamps held back, for tests and logs

    def wall_ms(self) -> int:
        """This node's wall clock in ms (with the test-only offset)."""
        return int(self._wall() * 1000) + self.offset_ms

    def stamp(self) -> int:
        """The time for an entry the leader appends now."""
        with self._lock:
            wall, mono = self.wall_ms(), self._monotonic()
            last = self._last_stamp
            if last is None:
                stamp = wall
            else:
                elapsed_ms = max(0.0, (mono - self._last_mono) * 1000)
                ceiling = last + int(elapsed_ms * (1 + CATCH_UP)) + LEAP_MS
                stamp = max(last, min(wall, ceiling))
                if wall > ceiling:
                    self._clamped(wall, ceiling, mono)
            self._last_stamp, self._last_mono = stamp, mono
            return stamp

    def _clamped(self, wall: int, ceiling: int, mono: float) -> None:
        self.clamped += 1
        if mono - self._warned_at >= WARN_EVERY_S:
            self._warned_at = mono
            log.warning(
                "the wall clock leapt %d ms ahead of the monotonic clock; entries are stamped "
                "%d ms behind it and catch up at 1%% of elapsed time (%d stamps held back)",
                wall - ceiling, wall - ceiling, self.clamped,
            )


def stamp_command(
    command: bytes, command_type: int | None, func_ids: frozenset[int], stamp: Callable[[], int]
) -> bytes:
    """A pysyncobj command calling one of `func_ids` with one argument, given the leader's
    stamp as its second argument; any other command unchanged.

    `command_type` is None for a command a follower forwarded (its first byte is the
    type), else the type of our own command (not yet prefixed)."""
    prefixed = command_type is None
    kind = (command[0] if command else None) if prefixed else command_type
    if kind != REGULAR_COMMAND:
        return command  # membership changes, no-ops
    try:
        call = pickle.loads(command[1:] if prefixed else command)
    except Exception:
        return command  # not ours to judge: pysyncobj handles it as before
    if not (isinstance(call, tuple) and len(call) == 2 and call[0] in func_ids):
        return command
    func_id, args = call
    body = pickle.dumps((func_id, (args[0], stamp())))
    return bytes([REGULAR_COMMAND]) + body if prefixed else body
