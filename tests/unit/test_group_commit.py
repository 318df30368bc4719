"""GroupCommit: entries proposed in one turn of the event loop share one Raft entry."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from pysyncobj import FAIL_REASON

from cluster.raft import group_commit
from cluster.raft.group_commit import GroupCommit


class FakeRaft:
    """Answers on another thread, as pysyncobj does."""

    def __init__(self, error: int = FAIL_REASON.SUCCESS) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.error = error

    def one(self, blob: bytes, cb: Any) -> None:
        self.sent.append(("one", blob))
        threading.Thread(target=cb, args=(blob.upper(), self.error)).start()

    def group(self, blobs: tuple[bytes, ...], cb: Any) -> None:
        self.sent.append(("group", blobs))
        threading.Thread(target=cb, args=([b.upper() for b in blobs], self.error)).start()


async def test_entries_of_one_turn_share_one_raft_entry_and_get_their_own_outcomes() -> None:
    raft = FakeRaft()
    group = GroupCommit(raft.one, raft.group)
    futures = [group.submit(b"a"), group.submit(b"b"), group.submit(b"c")]
    results = await asyncio.gather(*futures)
    assert raft.sent == [("group", (b"a", b"b", b"c"))]
    assert results == [(b"A", 0), (b"B", 0), (b"C", 0)]


async def test_a_lone_entry_goes_alone() -> None:
    raft = FakeRaft()
    group = GroupCommit(raft.one, raft.group)
    assert await group.submit(b"x") == (b"X", 0)
    assert await group.submit(b"y") == (b"Y", 0)
    assert raft.sent == [("one", b"x"), ("one", b"y")]


async def test_a_failed_group_fails_every_entry_with_the_same_error() -> None:
    raft = FakeRaft(error=FAIL_REASON.NOT_LEADER)
    group = GroupCommit(raft.one, raft.group)
    results = await asyncio.gather(group.submit(b"a"), group.submit(b"b"))
    assert [error for _, error in results] == [FAIL_REASON.NOT_LEADER] * 2


async def test_groups_are_capped_in_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group_commit, "MAX_GROUP_ENTRIES", 2)
    raft = FakeRaft()
    group = GroupCommit(raft.one, raft.group, max_in_flight=9)
    await asyncio.gather(*(group.submit(bytes([97 + i])) for i in range(5)))
    assert [kind for kind, _ in raft.sent] == ["group", "group", "one"]


async def test_proposals_wait_for_a_free_slot_and_then_go_together() -> None:
    raft = FakeRaft()
    group = GroupCommit(raft.one, raft.group, max_in_flight=1)
    first = group.submit(b"a")
    await asyncio.sleep(0)  # the first goes alone; the next three find the slot taken
    rest = [group.submit(b"b"), group.submit(b"c"), group.submit(b"d")]
    assert group.in_flight == 1
    await asyncio.gather(first, *rest)
    assert raft.sent == [("one", b"a"), ("group", (b"b", b"c", b"d"))]
    assert group.in_flight == 0


async def test_a_send_that_raises_fails_the_waiting_proposers() -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("member stopped")

    group = GroupCommit(broken, broken)
    with pytest.raises(RuntimeError, match="member stopped"):
        await group.submit(b"a")


async def test_groups_are_capped_in_operations_and_a_big_batch_still_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # one Raft entry is applied in one go on every node: its operations bound the pause
    monkeypatch.setattr(group_commit, "MAX_GROUP_OPERATIONS", 1000)
    raft = FakeRaft()
    group = GroupCommit(raft.one, raft.group, max_in_flight=9)
    sizes = {b"a": 600, b"b": 400, b"c": 1, b"d": 1500, b"e": 1}
    await asyncio.gather(*(group.submit(blob, operations=n) for blob, n in sizes.items()))
    assert raft.sent == [("group", (b"a", b"b")), ("one", b"c"), ("one", b"d"), ("one", b"e")]
