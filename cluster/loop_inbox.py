"""Calls from another thread into an asyncio loop, woken without holding the GIL.

The Raft thread hands every outcome, read verdict and applied entry's events to
the asyncio thread. `loop.call_soon_threadsafe` would wake the loop for each;
under uvloop it writes the wake-up (`uv_async_send`, a write to the loop's
eventfd) while the calling thread holds the GIL. The write makes the sleeping
loop thread runnable, and the kernel may switch to it at once: the caller is
then descheduled with the GIL in hand, and neither thread runs Python until the
caller gets a core back. Under batches at 16 clients that one line held 4.2 % of
the three nodes' GIL samples (`py-spy record --gil`), for ~125 calls a second on
the busiest node (docs/BENCHMARKS.md, round fifteen).

A `LoopInbox` queues the call and wakes the loop with `os.write` on a pipe, which
lets go of the GIL for the system call, and only when no wake-up is pending:
calls queued before the loop drains the inbox share one. The loop runs them in
the order they were queued. `inbox_of(loop)` gives each loop one inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

_INBOXES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopInbox] = weakref.WeakKeyDictionary()


class LoopInbox:
    """Calls queued by any thread, run on one loop in the order they were queued."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)  # the loop holds the inbox (its reader), not the reverse
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._waking = False  # a wake-up was written and the loop has not read it yet
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        # closed with the inbox: nothing can write to them then (a writer holds the inbox)
        weakref.finalize(self, _close, self._wake_read, self._wake_write)
        loop.add_reader(self._wake_read, self._drain)

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on the loop soon; from any thread. Dropped if the loop is closed
        (as `call_soon_threadsafe` refuses then: nobody is waiting)."""
        loop = self._loop()
        if loop is None or loop.is_closed():
            return
        self._calls.append((fn, args))
        if not self._waking:
            self._waking = True
            # without the GIL, unlike uv_async_send; a full pipe: the loop has wake-ups to read
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_write, b"\0")

    def _drain(self) -> None:
        """On the loop: read the wake-up, then run every queued call."""
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_read, 4096)
        # only now: a call queued from here on writes a new wake-up. Cleared before the
        # read, a wake-up written in between would be read here and the next call, seeing
        # one pending, would write none: it would wait for a later call to be run.
        self._waking = False
        calls = self._calls
        while calls:
            fn, args = calls.popleft()
            try:
                fn(*args)
            except Exception as exc:  # as the loop reports a failed callback; the rest still run
                asyncio.get_running_loop().call_exception_handler(
                    {"message": f"a call from another thread failed: {fn!r}", "exception": exc})


def inbox_of(loop: asyncio.AbstractEventLoop) -> LoopInbox:
    """The loop's inbox, made on first use; call it on the loop's own thread."""
    inbox = _INBOXES.get(loop)
    if inbox is None:
        inbox = _INBOXES[loop] = LoopInbox(loop)
    return inbox


def _close(*fds: int) -> None:
    for fd in fds:
        os.close(fd)
