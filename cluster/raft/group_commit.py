"""Group commit: concurrent proposals share Raft entries, with a bounded pipeline.

Under load, many handlers propose in the same turn of the asyncio loop. Sending
each as its own Raft entry costs one append-entries round per entry per
follower, one wake-up of the Raft thread and one thread hop back per outcome;
all three dominate a node's CPU at 64 clients. `GroupCommit` collects the
entries proposed during one turn and hands them to pysyncobj together at the
end of it (`loop.call_soon`): one Raft entry, applied entry by entry in order
(each keeps its own timestamp, request id and idempotency key, and its own
outcome), one callback for the group. A lone entry on an idle node goes out at
once, alone, so it waits for nothing.

At most `max_in_flight` groups are in flight per node; proposals arriving
meanwhile wait for the next group (which therefore grows with the load, like
etcd's batching). That bound also keeps the Raft thread responsive under
overload: pysyncobj applies every committed entry in one tick, and heartbeats
wait until it is done, so an unbounded backlog (256 clients sending batches)
stalled the Raft thread past the election timeout. A group is also capped in
entries, bytes and operations (`MAX_GROUP_OPERATIONS`; a batch counts its
operations, anything else one): one Raft entry is applied in one go on every
node, so its cost bounds how long a node goes without a heartbeat
(cluster/raft/apply_budget.py applies the entries of a tick in slices, but
cannot split one). A group always takes at least one entry. A slot is given back when the group's callback arrives, or
after `SLOT_TIMEOUT` seconds in case pysyncobj never calls back.

Two queues (the admission lanes, cluster/api/admission.py): entries submitted
with `high=True` go out at the end of the turn in a group of their own (never
sharing a Raft entry with bulk work), whatever the normal groups in flight, and
marked (`HighCallback`) so that the leader's log gate (log_gate.py) lets them
into the log ahead of the normal work it holds. The high lane takes no slot:
its admission limit bounds it.

Everything but the pysyncobj callback runs on the asyncio thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from pysyncobj import FAIL_REASON

from cluster.loop_inbox import inbox_of

from .log_gate import HighCallback

Callback = Callable[[Any, int], None]
MAX_GROUP_ENTRIES = 256
MAX_GROUP_BYTES = 128 * 1024
# ~0.1 s of applying at 1M objects on an idle core (a few hundred ms on a busy one): well
# below the 1 s election timeout. The largest batch (--max-batch-operations) still fits alone.
MAX_GROUP_OPERATIONS = 1000
MAX_IN_FLIGHT = 2
SLOT_TIMEOUT = 1.0


class _Queue:
    def __init__(self) -> None:
        self.blobs: list[bytes] = []
        self.futures: list[asyncio.Future[tuple[Any, int]]] = []
        self.operations: list[int] = []


class GroupCommit:
    def __init__(
        self,
        send_one: Callable[[bytes, Callback], None],
        send_group: Callable[[tuple[bytes, ...], Callback], None],
        max_in_flight: int = MAX_IN_FLIGHT,
        max_group_bytes: int = MAX_GROUP_BYTES,
    ) -> None:
        self._send_one = send_one
        self._send_group = send_group
        self.max_in_flight = max_in_flight
        self.max_group_bytes = max_group_bytes
        # per lane (high first): entries waiting for the next group, and their futures
        self._queues: tuple[_Queue, _Queue] = (_Queue(), _Queue())
        self._scheduled = False
        self.in_flight = 0
        self.groups_sent = 0
        self.entries_sent = 0

    @property
    def queued(self) -> tuple[int, int]:
        """Entries waiting for a group: (high, normal)."""
        return len(self._queues[0].blobs), len(self._queues[1].blobs)

    def submit(
        self, blob: bytes, high: bool = False, operations: int = 1
    ) -> asyncio.Future[tuple[Any, int]]:
        """Queue one encoded entry of `operations` operations; the future resolves (on this
        loop) to (result, error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Any, int]] = loop.create_future()
        queue = self._queues[0 if high else 1]
        queue.blobs.append(blob)
        queue.futures.append(future)
        queue.operations.append(operations)
        if not self._scheduled and (high or self.in_flight < self.max_in_flight):
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _waiting(self) -> bool:
        return bool(self._queues[0].blobs or self._queues[1].blobs)

    def _flush(self) -> None:
        self._scheduled = False
        high, normal = self._queues
        while high.blobs:  # the high lane first, and without waiting for a slot
            self._send(*self._take(high), high=True)
        while normal.blobs and self.in_flight < self.max_in_flight:
            self._send(*self._take(normal), high=False)

    def _take(self, queue: _Queue) -> tuple[list[bytes], list[asyncio.Future[tuple[Any, int]]]]:
        """The queue's next group: its oldest entries within the caps (at least one)."""
        count = size = operations = 0
        for blob, ops in zip(queue.blobs[:MAX_GROUP_ENTRIES], queue.operations, strict=False):
            if count and (size + len(blob) > self.max_group_bytes
                          or operations + ops > MAX_GROUP_OPERATIONS):
                break
            count, size, operations = count + 1, size + len(blob), operations + ops
        blobs, futures = queue.blobs[:count], queue.futures[:count]
        del queue.blobs[:count], queue.futures[:count], queue.operations[:count]
        return blobs, futures

    def _send(self, blobs: list[bytes], futures: list[asyncio.Future[tuple[Any, int]]],
              high: bool) -> None:
        loop = asyncio.get_running_loop()
        slots = 0 if high else 1
        self.in_flight += slots
        self.groups_sent += 1
        self.entries_sent += len(blobs)
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.in_flight -= slots
            if self._waiting() and not self._scheduled:
                self._scheduled = True
                loop.call_soon(self._flush)

        timer = loop.call_later(SLOT_TIMEOUT, release)

        def settle(result: Any, error: int) -> None:
            timer.cancel()
            release()
            if error == FAIL_REASON.SUCCESS and len(futures) > 1:
                outcomes: Sequence[Any] = result
                for future, outcome in zip(futures, outcomes, strict=True):
                    if not future.done():
                        future.set_result((outcome, error))
                return
            for future in futures:
                if not future.done():
                    future.set_result((result, error))

        inbox = inbox_of(loop)

        def on_raft(result: Any, error: int) -> None:  # on the Raft thread
            inbox.call(settle, result, error)

        callback: Callback = HighCallback(on_raft) if high else on_raft
        try:
            if len(blobs) == 1:
                self._send_one(blobs[0], callback)
            else:
                self._send_group(tuple(blobs), callback)
        except Exception as exc:  # e.g. the member stopped: never leave proposers hanging
            timer.cancel()
            release()
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
