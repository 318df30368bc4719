"""Linearizable reads: readers on the asyncio thread share confirmations.

A node may serve a read from its local state only once it has applied every
entry committed before the read began. A *barrier* proves that: the node asks
the Raft thread for a read index confirmed after the call and waits until it
has applied it (read_index.py; before ReadIndex, a barrier was a tiny log entry
committed through Raft, hence the name).

Concurrent readers share barriers. Readers gather in the *open* batch; when no
barrier is in flight the open batch is sent at once. Readers that arrive while
a barrier is in flight join the next batch, which is sent when the in-flight
one finishes: the in-flight barrier may have been proposed before they arrived,
so it proves nothing for them. Thus at most one barrier is in flight per node
and every reader waits for at most about two commit round trips.

Everything here runs on the asyncio thread; no locks are needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from cluster.errors import ClusterError, Timeout, Unavailable


class ReadBarrier:
    def __init__(self, propose_barrier: Callable[[], Awaitable[object]]) -> None:
        self._propose_barrier = propose_barrier
        self._open: asyncio.Future[None] | None = None  # readers waiting for the next barrier
        self._in_flight: asyncio.Task[None] | None = None
        self.barriers_sent = 0

    async def confirm(self, timeout: float) -> None:
        """Return once this node has applied everything committed before the call.

        Raises `Unavailable` when that cannot be confirmed within `timeout`.
        """
        if self._open is None:
            self._open = asyncio.get_running_loop().create_future()
            self._open.add_done_callback(_consume_exception)
        batch = self._open
        if self._in_flight is None:
            self._send_open_batch()
        try:
            await asyncio.wait_for(asyncio.shield(batch), timeout)
        except TimeoutError:
            raise Unavailable(
                f"could not confirm within {timeout:g}s that this node is up to date "
                "(no leader or no quorum?); retry, or read with consistency=stale"
            ) from None

    def _send_open_batch(self) -> None:
        batch, self._open = self._open, None
        assert batch is not None
        self.barriers_sent += 1
        self._in_flight = asyncio.ensure_future(self._run(batch))

    async def _run(self, batch: asyncio.Future[None]) -> None:
        try:
            await self._propose_barrier()
        except Timeout:
            _settle(batch, Unavailable("the read barrier was not confirmed in time"))
        except ClusterError as exc:
            _settle(batch, exc if isinstance(exc, Unavailable) else Unavailable(str(exc)))
        except Exception as exc:  # never leave readers hanging
            _settle(batch, Unavailable(f"read barrier failed: {exc}"))
        else:
            if not batch.done():
                batch.set_result(None)
        finally:
            self._in_flight = None
            if self._open is not None:
                self._send_open_batch()


def _settle(batch: asyncio.Future[None], exc: BaseException) -> None:
    if not batch.done():
        batch.set_exception(exc)


def _consume_exception(future: asyncio.Future[None]) -> None:
    # a barrier whose readers all gave up must not log "exception never retrieved"
    if not future.cancelled():
        future.exception()
