"""Admission lanes (cluster/api/admission.py) and the high lane's place in group commit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from cluster.api.admission import HIGH, NORMAL, Admission
from cluster.api.errors import ApiError
from cluster.raft.group_commit import GroupCommit
from cluster.raft.log_gate import HighCallback


def request(headers: dict[str, str] | None = None) -> Any:
    return make_mocked_request("GET", "/", headers=headers or {})


def test_a_full_lane_refuses_with_429_and_retry_after_while_the_other_admits() -> None:
    admission = Admission(normal_limit=150, high_limit=10)
    with admission.permit(NORMAL, 100):
        with pytest.raises(ApiError) as refused, admission.permit(NORMAL, 100):
            pass
        assert refused.value.code == "overloaded" and refused.value.status == 429
        assert refused.value.headers["Retry-After"] == "1"
        with admission.permit(NORMAL, 50), admission.permit(HIGH, 1):
            pass
    assert admission.lanes[NORMAL].in_flight == 0 and admission.lanes[NORMAL].rejected == 1
    with admission.permit(NORMAL, 1000):  # larger than the lane: admitted when the lane is idle
        assert admission.lanes[NORMAL].in_flight == 1000


def test_the_lane_comes_from_the_header_or_from_every_machine_touched() -> None:
    admission = Admission(10, 10, machine_priority={"lock": "high", "cart": "normal"}.get)
    assert admission.lane_of(request({"X-Priority": "high"})) == HIGH
    assert admission.lane_of(request({"X-Priority": "normal"}), ("lock",)) == NORMAL
    assert admission.lane_of(request(), ("lock",)) == HIGH
    assert admission.lane_of(request(), ("lock", "cart")) == NORMAL
    assert admission.lane_of(request(), ("nosuch",)) == NORMAL
    with pytest.raises(ApiError, match="X-Priority"):
        admission.lane_of(request({"X-Priority": "urgent"}))


async def test_high_entries_go_at_once_in_their_own_marked_group_ahead_of_queued_normal_ones() -> None:
    sent: list[tuple[bytes, ...]] = []
    callbacks: list[Any] = []

    def send_group(blobs: tuple[bytes, ...], cb: Any) -> None:
        sent.append(blobs)
        callbacks.append(cb)

    group = GroupCommit(lambda blob, cb: send_group((blob,), cb), send_group, max_in_flight=1)
    group.submit(b"n0")
    await asyncio.sleep(0)  # n0 goes alone; the pipeline is full now
    for i in range(1, 4):
        group.submit(f"n{i}".encode())
    high = [group.submit(b"h1", high=True), group.submit(b"h2", high=True)]
    assert group.queued == (2, 3)
    await asyncio.sleep(0)  # the high lane takes no slot: it leaves now, without bulk work
    assert sent[1] == (b"h1", b"h2") and isinstance(callbacks[1], HighCallback)
    assert group.queued == (0, 3) and not isinstance(callbacks[0], HighCallback)
    callbacks[1](["a", "b"], 0)
    assert await asyncio.gather(*high) == [("a", 0), ("b", 0)]
    assert len(sent) == 2, "normal entries still wait for the slot"
    callbacks[0]("ok", 0)  # n0 committed: the next normal group leaves
    for _ in range(5):
        await asyncio.sleep(0)
    assert sent[2] == (b"n1", b"n2", b"n3")


def test_a_machine_names_its_default_lane() -> None:
    from schema_lang import SchemaError, compile_machine

    base = "states: {a: {}}\ntransitions: {create: {from: null, to: a}}\n"
    assert compile_machine("machine: m\n" + base).priority == "normal"
    assert compile_machine("machine: m\npriority: high\n" + base).priority == "high"
    with pytest.raises(SchemaError, match="priority must be one of normal, high"):
        compile_machine("machine: m\npriority: urgent\n" + base)


def test_a_busy_lane_whose_oldest_request_waited_too_long_refuses_new_work() -> None:
    now = [0.0]
    admission = Admission(normal_limit=8, high_limit=10, max_wait=0.5, clock=lambda: now[0])
    with admission.permit(NORMAL, 1), admission.permit(NORMAL, 1):  # a quarter of the lane
        now[0] = 0.4
        with admission.permit(NORMAL, 1):
            pass
        now[0] = 0.6  # far from the unit limit, but the node is not keeping up
        with pytest.raises(ApiError, match="oldest request has waited 0.60s"), admission.permit(NORMAL, 1):
            pass
        with admission.permit(HIGH, 1):  # the other lane has its own clock
            pass
    with admission.permit(NORMAL, 1):  # the slow ones finished: admitted again
        pass


def test_one_slow_request_alone_does_not_close_the_lane() -> None:
    now = [0.0]
    admission = Admission(normal_limit=8, high_limit=10, max_wait=0.5, clock=lambda: now[0])
    with admission.permit(NORMAL, 1):  # e.g. waiting out a leader election
        now[0] = 3.0
        with admission.permit(NORMAL, 1):
            pass
