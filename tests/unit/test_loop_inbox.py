"""Calls from the Raft thread into the asyncio loop: every one runs, in order, on the loop."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
import uvloop

from cluster import loop_inbox
from cluster.loop_inbox import inbox_of

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def run(make_loop: Callable[[], asyncio.AbstractEventLoop], main: Callable[[], Any]) -> Any:
    loop = make_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


async def arrived(done: asyncio.Event, seconds: float = 10.0) -> None:
    try:
        await asyncio.wait_for(done.wait(), seconds)
    except TimeoutError:
        raise AssertionError("a call from another thread never ran on the loop") from None


@pytest.mark.parametrize("loop_kind", sorted(LOOPS))
def test_calls_from_another_thread_run_on_the_loop_in_order(loop_kind: str) -> None:
    count = 20_000

    async def main() -> tuple[list[int], set[int], int]:
        inbox = inbox_of(asyncio.get_running_loop())
        seen: list[int] = []
        threads: set[int] = set()
        done = asyncio.Event()

        def record(n: int) -> None:
            seen.append(n)
            threads.add(threading.get_ident())
            if n == count - 1:
                done.set()

        def produce() -> None:  # as the Raft thread does: calls in bursts, with pauses
            for n in range(count):
                inbox.call(record, n)
                if n % 500 == 0:
                    threading.Event().wait(0.001)

        producer = threading.Thread(target=produce)
        producer.start()
        await arrived(done)
        producer.join()
        return seen, threads, threading.get_ident()

    seen, threads, loop_thread = run(LOOPS[loop_kind], main)
    assert seen == list(range(count))
    assert threads == {loop_thread}


def test_a_call_made_while_the_loop_reads_its_wake_up_is_not_stranded() -> None:
    """A call can land between the loop's read of a wake-up and its run of the queue (the
    Raft thread takes the GIL while the read lets go of it). It must not leave the inbox
    believing a wake-up is pending that the read already took: the next call would then
    write none, and wait for yet another call to be run."""

    async def main() -> list[str]:
        inbox = inbox_of(asyncio.get_running_loop())
        ran: list[str] = []
        done = asyncio.Event()
        real_read = os.read
        injected = False

        def read_with_a_call_landing(fd: int, size: int) -> bytes:
            nonlocal injected
            if fd == inbox._wake_read and not injected:
                injected = True
                inbox.call(ran.append, "landed during the read")
            return real_read(fd, size)

        def last(tag: str) -> None:
            ran.append(tag)
            done.set()

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(loop_inbox.os, "read", read_with_a_call_landing)
            inbox.call(ran.append, "first")
            for _ in range(20):  # the first drain runs (and the call lands inside it)
                await asyncio.sleep(0.01)
            assert injected
            threading.Thread(target=inbox.call, args=(last, "the next call")).start()
            await arrived(done, 2.0)
        return ran

    ran = run(asyncio.new_event_loop, main)
    assert ran == ["first", "landed during the read", "the next call"]


def test_a_failing_call_is_reported_and_the_rest_still_run() -> None:
    async def main() -> tuple[list[str], list[dict[str, Any]]]:
        loop = asyncio.get_running_loop()
        reported: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, context: reported.append(context))
        inbox = inbox_of(loop)
        ran: list[str] = []
        done = asyncio.Event()

        def fail() -> None:
            raise ValueError("broken listener")

        def produce() -> None:
            inbox.call(ran.append, "before")
            inbox.call(fail)
            inbox.call(ran.append, "after")
            inbox.call(done.set)

        threading.Thread(target=produce).start()
        await arrived(done)
        return ran, reported

    ran, reported = run(asyncio.new_event_loop, main)
    assert ran == ["before", "after"]
    assert len(reported) == 1 and isinstance(reported[0]["exception"], ValueError)


def test_a_closed_loop_drops_calls_as_call_soon_threadsafe_refuses_them() -> None:
    loop = asyncio.new_event_loop()

    async def make() -> loop_inbox.LoopInbox:
        return inbox_of(asyncio.get_running_loop())

    inbox = loop.run_until_complete(make())
    loop.close()
    inbox.call(print, "nobody is waiting")  # no error, nothing kept
    assert not inbox._calls
