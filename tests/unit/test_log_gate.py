"""The leader's log gate (cluster/raft/log_gate.py): normal work enters the log within a
byte budget, the high lane and pysyncobj's own commands pass, forwarded work is refused
(429 on the follower) once the held queue waits too long."""

from __future__ import annotations

from typing import Any

from cluster.raft.log_gate import (
    FORWARD_MESSAGE,
    HELD,
    PASS,
    REFUSED,
    HighCallback,
    HighForwarder,
    LogGate,
    unapplied_bytes,
)

OWN = 0  # the command type of our own replicated call (pysyncobj passes it apart)


def forwarded(size: int) -> bytes:
    return bytes([0]) + b"x" * (size - 1)  # a follower's command carries its type byte


def own_callback(result: Any, error: int) -> None:
    pass


def test_normal_commands_wait_and_enter_the_log_within_the_budget_oldest_first() -> None:
    gate = LogGate(budget=100, max_wait=1.0, clock=lambda: 0.0)
    gate.note_high()  # the high lane is in use: the tight budget holds
    commands = [b"a" * 40, b"b" * 40, b"c" * 40]
    for command in commands:
        assert gate.offer(command, own_callback, OWN) == HELD
    appended: list[bytes] = []
    assert gate.release(0, lambda c, cb, t: appended.append(c)) == 2  # 80 of 100 bytes
    assert appended == commands[:2] and gate.held == 1 and gate.held_bytes == 40
    assert gate.release(80, lambda c, cb, t: appended.append(c)) == 0  # 80 + 40 > 100
    assert gate.release(50, lambda c, cb, t: appended.append(c)) == 1
    assert appended == commands and gate.held == 0


def test_a_command_larger_than_the_budget_goes_alone_once_the_log_is_applied() -> None:
    gate = LogGate(budget=100, max_wait=1.0)
    gate.offer(b"z" * 5000, own_callback, OWN)  # larger than even the idle budget (800)
    appended: list[bytes] = []
    assert gate.release(10, lambda c, cb, t: appended.append(c)) == 0
    assert gate.release(0, lambda c, cb, t: appended.append(c)) == 1


def test_the_budget_is_tight_only_while_clients_use_the_high_lane() -> None:
    now = [0.0]
    gate = LogGate(budget=100, max_wait=60.0, clock=lambda: now[0])
    appended: list[bytes] = []

    def fill_and_release(backlog: int) -> int:
        for _ in range(20):
            gate.offer(b"n" * 40, own_callback, OWN)
        went = gate.release(backlog, lambda c, cb, t: appended.append(c))
        while gate.held:  # empty the queue for the next round
            gate.drain(lambda c, cb, t: None)
        return went

    assert fill_and_release(0) == 20  # no high lane in use: 8 x 100 bytes (800) take all 20
    assert gate.offer(b"tick", HighCallback(own_callback, client=False), OWN) == PASS
    assert fill_and_release(0) == 20  # the leader's own timer tick is not a client's use
    assert gate.offer(b"renewal", HighCallback(own_callback), OWN) == PASS
    assert fill_and_release(0) == 2  # a client's high-lane command: 100 bytes, two commands
    now[0] += 4.9
    assert fill_and_release(0) == 2
    now[0] += 0.2  # five seconds without one: wide again
    assert fill_and_release(0) == 20


def test_the_high_lane_and_pysyncobjs_own_commands_pass() -> None:
    gate = LogGate(budget=1, max_wait=1.0)
    assert gate.offer(b"renewal", HighCallback(own_callback), OWN) == PASS
    assert gate.offer(b"membership change", own_callback, 1) == PASS  # not a replicated call
    assert gate.offer(bytes([1]) + b"forwarded change", ("node", 7), None) == PASS
    assert gate.held == 0


def test_forwarded_work_is_refused_once_the_oldest_held_command_waited_too_long() -> None:
    now = [0.0]
    gate = LogGate(budget=10, max_wait=0.3, clock=lambda: now[0])
    assert gate.offer(forwarded(50), ("follower", 1), None) == HELD
    now[0] = 0.2
    assert gate.offer(forwarded(50), ("follower", 2), None) == HELD
    now[0] = 0.5  # the oldest has waited 0.5 s: the follower's next command is refused ...
    assert gate.offer(forwarded(50), ("follower", 3), None) == REFUSED
    assert gate.offer(b"own", own_callback, OWN) == HELD  # ... our own, never (HTTP admission)
    assert gate.refused == 1
    gate.release(0, lambda c, cb, t: None)  # the first went into the log: the rest are newer
    now[0] = 0.45
    assert gate.offer(forwarded(50), ("follower", 4), None) == HELD


def test_forwarded_work_is_refused_past_the_held_bytes_cap() -> None:
    gate = LogGate(budget=10, max_wait=9.0, max_held=120, clock=lambda: 0.0)
    assert gate.offer(forwarded(100), ("follower", 1), None) == HELD
    assert gate.offer(forwarded(30), ("follower", 2), None) == REFUSED


def test_a_leader_that_steps_down_hands_everything_held_to_pysyncobj() -> None:
    gate = LogGate(budget=1, max_wait=1.0)
    gate.offer(b"mine", own_callback, OWN)
    gate.offer(forwarded(5), ("follower", 1), None)
    handed: list[tuple[bytes, Any, int | None]] = []
    gate.drain(lambda c, cb, t: handed.append((c, cb, t)))
    assert handed == [(b"mine", own_callback, OWN), (forwarded(5), ("follower", 1), None)]
    assert gate.held == 0 and gate.held_bytes == 0


def test_unapplied_bytes_counts_the_log_after_the_applied_index() -> None:
    log = [(b"x" * 10, 5, 1), (b"y" * 20, 6, 1), (b"z" * 30, 7, 2)]
    assert unapplied_bytes(log, 5) == 50
    assert unapplied_bytes(log, 7) == 0
    assert unapplied_bytes(log, 0) == 60
    assert unapplied_bytes([], 3) == 0


class FakeMember:
    """The pysyncobj attributes `HighForwarder` uses (0.3.17's names)."""

    def __init__(self) -> None:
        self._SyncObj__raftLeader: str | None = None
        self._SyncObj__commandsLocalCounter = 100
        self._SyncObj__commandsWaitingReply: dict[int, Any] = {}
        self.leading = False
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self._SyncObj__transport = self

    def _isLeader(self) -> bool:  # noqa: N802
        return self.leading

    def send(self, node: str, message: dict[str, Any]) -> None:
        self.sent.append((node, message))


def test_a_followers_high_lane_goes_to_the_leader_as_its_own_message() -> None:
    member, forwarder = FakeMember(), HighForwarder()
    local: list[bytes] = []
    forwarder.put(b"\x00renewal", own_callback)
    forwarder.flush(member, lambda c, cb: local.append(c))
    assert member.sent == [] and local == [], "no leader known: it waits, as pysyncobj's do"
    member._SyncObj__raftLeader = "leader"
    forwarder.flush(member, lambda c, cb: local.append(c))
    assert member.sent == [("leader", {"type": FORWARD_MESSAGE, "command": b"\x00renewal",
                                       "request_id": 101})]
    # pysyncobj answers it (and the leader's outcome may first: test_forward_answers.py)
    assert list(member._SyncObj__commandsWaitingReply) == [101]
    assert member._SyncObj__commandsWaitingReply[101].callback is own_callback
    member.leading = True  # this node leads now: straight into its own queue
    forwarder.put(b"\x00next", own_callback)
    forwarder.flush(member, lambda c, cb: local.append(c))
    assert local == [b"\x00next"] and forwarder.sent == 1
