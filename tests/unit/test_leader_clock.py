"""The leader's clock (issue 17, item 17): stamps follow the monotonic clock, never leap or go back."""

from __future__ import annotations

import pickle

from cluster.raft.clock import LEAP_MS, LeaderClock, stamp_command


class FakeClocks:
    def __init__(self) -> None:
        self.wall = 1_800_000_000.0
        self.mono = 100.0

    def clock(self, offset_ms: int = 0) -> LeaderClock:
        return LeaderClock(offset_ms, wall=lambda: self.wall, monotonic=lambda: self.mono)

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def test_stamps_follow_a_steady_wall_clock() -> None:
    t = FakeClocks()
    clock = t.clock()
    first = clock.stamp()
    t.advance(5.0)
    assert clock.stamp() == first + 5_000
    assert clock.clamped == 0


def test_a_forward_leap_of_the_wall_clock_is_bounded_and_counted() -> None:
    t = FakeClocks()
    clock = t.clock()
    first = clock.stamp()
    t.wall += 86_400  # the wall clock jumps a day ahead
    t.mono += 1.0
    stamp = clock.stamp()
    assert stamp <= first + 1_000 * 1.01 + LEAP_MS
    assert clock.clamped == 1
    t.advance(10.0)  # afterwards it follows real time (plus 1% catch-up), not the leap
    assert clock.stamp() - stamp <= 10_000 * 1.01 + LEAP_MS


def test_a_backward_step_never_makes_stamps_go_back() -> None:
    t = FakeClocks()
    clock = t.clock()
    first = clock.stamp()
    t.wall -= 3_600
    assert clock.stamp() == first


def test_the_test_only_offset_shifts_the_wall_clock() -> None:
    t = FakeClocks()
    assert t.clock(offset_ms=60_000).wall_ms() == t.clock().wall_ms() + 60_000


def test_stamp_command_adds_the_stamp_to_our_calls_only() -> None:
    ours = pickle.dumps((7, (b"blob",)))
    stamped = stamp_command(ours, 0, frozenset({7}), lambda: 42)
    assert pickle.loads(stamped) == (7, (b"blob", 42))
    forwarded = bytes([0]) + pickle.dumps((7, (b"blob", 1)))  # a follower's (or old leader's)
    again = stamp_command(forwarded, None, frozenset({7}), lambda: 43)
    assert again[0] == 0 and pickle.loads(again[1:]) == (7, (b"blob", 43))
    other = pickle.dumps((8, (b"x",)))
    assert stamp_command(other, 0, frozenset({7}), lambda: 44) == other
    membership = bytes([2]) + b"add 127.0.0.1:1"
    assert stamp_command(membership, None, frozenset({7}), lambda: 45) == membership
    assert stamp_command(b"not a pickle", 0, frozenset({7}), lambda: 46) == b"not a pickle"
