"""The batched read barrier: concurrent readers share barriers, late ones wait for the next."""

from __future__ import annotations

import asyncio

import pytest

from cluster.errors import Timeout, Unavailable
from cluster.raft.reads import ReadBarrier


class FakeLog:
    """Barriers complete only when the test releases them, one by one."""

    def __init__(self) -> None:
        self.proposed: list[asyncio.Future[None]] = []

    async def propose(self) -> None:
        done = asyncio.get_running_loop().create_future()
        self.proposed.append(done)
        await done

    def commit(self, i: int, error: BaseException | None = None) -> None:
        if error is None:
            self.proposed[i].set_result(None)
        else:
            self.proposed[i].set_exception(error)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_concurrent_readers_share_one_barrier() -> None:
    log = FakeLog()
    barrier = ReadBarrier(log.propose)
    first = asyncio.ensure_future(barrier.confirm(5))
    await settle()
    assert len(log.proposed) == 1
    # readers arriving while the first barrier is in flight wait for the next one
    late = [asyncio.ensure_future(barrier.confirm(5)) for _ in range(10)]
    await settle()
    assert len(log.proposed) == 1
    log.commit(0)
    await settle()
    assert first.done() and not any(r.done() for r in late)
    assert len(log.proposed) == 2  # one barrier for all ten late readers
    log.commit(1)
    await asyncio.gather(first, *late)
    assert barrier.barriers_sent == 2


async def test_a_failed_barrier_makes_its_readers_unavailable() -> None:
    log = FakeLog()
    barrier = ReadBarrier(log.propose)
    reader = asyncio.ensure_future(barrier.confirm(5))
    await settle()
    log.commit(0, Timeout("no commit"))
    with pytest.raises(Unavailable):
        await reader


async def test_a_reader_gives_up_after_its_timeout() -> None:
    log = FakeLog()
    barrier = ReadBarrier(log.propose)
    with pytest.raises(Unavailable, match="could not confirm"):
        await barrier.confirm(0.05)
    # the barrier still completes later without anyone waiting, and the next reader gets a new one
    log.commit(0)
    await settle()
    reader = asyncio.ensure_future(barrier.confirm(5))
    await settle()
    assert len(log.proposed) == 2
    log.commit(1)
    await reader
