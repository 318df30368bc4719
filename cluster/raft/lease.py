"""Leader leases for linearizable reads, and the leader stickiness that makes them safe.

**Stickiness** (Raft thesis §4.2.3, the "check-quorum" half etcd also uses): a
follower that heard from its current leader less than `window` ago ignores a
RequestVote (unless it comes from that leader itself, which
gave up its lease before standing again): it neither raises its term nor grants. So
does a node for the first `window` after it started (it may have promised,
before a crash, what it no longer remembers). `window` is half the minimum
election timeout: a follower stands for election at the earliest a minimum
election timeout after it last heard the leader, and the others, which heard
the same leader a little later (a heartbeat, or a busy Raft thread), must not
turn it away then (each such refusal adds an election timeout to a failover). pysyncobj 0.3.17
grants any higher-term candidate with an up-to-date log even while it hears
from a live leader, which is why a lease was unsafe without this. The leader
itself is not sticky: a node that comes back from a partition with a higher
term can only rejoin by deposing it (pysyncobj's replies carry no term), and
the leader gives up its lease before it processes such a vote.

**The promise.** A follower answers the leader's probe (read_index.py) with
`sticky: true` only when it follows that very leader in the probe's term; it
then notes the time (`heard_at`) and keeps its own election deadline at least
`heard_at + window` away, so for that long it votes for nobody, itself included.

**The lease.** The leader notes the time it *sent* each probe round;
when a majority (itself included) answered it with the promise, no other node
can win an election before `sent + window` by any follower's clock. With
clocks that drift apart by at most `DRIFT` and a safety `MARGIN_SECONDS`, the
leader may serve reads until `sent + window * (1 - DRIFT) - MARGIN_SECONDS`
without a round. The lease is dropped before this node does anything that could
help another node lead: before it processes a RequestVote with a higher term,
as it stops leading, when the membership changes, and for the rest of its term
when it hands leadership over (it then tells the followers, `fsm_lease_release`,
so they may vote for the transfer's target at once).

**The clock** (`lease_clock`) is CLOCK_BOOTTIME on Linux: unlike the monotonic
clock it keeps counting while the machine is suspended, so a leader that was
suspended for longer than its lease finds the lease over when it wakes, and a
follower finds its promise run out. A hypervisor that pauses a VM without its
kernel noticing hides the pause from every clock of the guest: there, run
`--read-lease off` (OPERATIONS). pysyncobj's election timers keep the monotonic
clock: they only decide *when* to stand, never whether a read is safe;
`defer_election` takes a duration for that reason.

Threads: everything here runs on the Raft thread, except `Lease.holds`, which
the asyncio thread calls to serve a read without a hop: `published` is one
tuple replaced whole, and the Raft thread drops it *before* granting a vote, so
a reader that still sees it valid read it before any other leader could exist.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Hashable
from typing import Any, Protocol

log = logging.getLogger("fsmcluster.raft")

DRIFT = 0.10  # the most two members' clocks may run apart (rate)
MARGIN_SECONDS = 0.05  # taken off every lease on top of the drift
RELEASE = "fsm_lease_release"  # the leader handing over: it holds no lease for the rest of its term

_NO_LEASE = (-1, 0.0)


def _boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


# the lease's clock, and the clock of every time it is compared with (read_index.py)
lease_clock: Callable[[], float] = _boottime if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic


def sticky_window(min_timeout: float) -> float:
    """How long after hearing its leader a follower ignores votes (and promises to)."""
    return min_timeout / 2


def lease_seconds(window: float) -> float:
    return window * (1 - DRIFT) - MARGIN_SECONDS


class Lease:
    """The leader's lease: (term, deadline on `lease_clock`), published for the asyncio thread."""

    def __init__(self, window: float, enabled: bool = True,
                 clock: Callable[[], float] = lease_clock) -> None:
        self.enabled = enabled and lease_seconds(window) > 0
        self.seconds = lease_seconds(window)
        self.clock = clock
        self.published: tuple[int, float] = _NO_LEASE
        self._not_before = -math.inf  # rounds sent before the last drop do not count
        self._blocked_term = -1  # handed over in this term: no lease until the term changes
        self.extensions = 0

    def holds(self, term: int, now: float) -> bool:
        """Any thread: whether reads in `term` may be served now without a round."""
        held_term, until = self.published
        return held_term == term and now < until

    def extend(self, term: int, sent: float) -> None:
        """A round sent at `sent` in `term` was answered with a promise by a majority."""
        if not self.enabled or term == self._blocked_term or sent < self._not_before:
            return
        held_term, until = self.published
        new_until = sent + self.seconds
        if held_term == term and until >= new_until:
            return
        self.published = (term, new_until)
        self.extensions += 1

    def drop(self) -> None:
        if self.published != _NO_LEASE:
            self.published = _NO_LEASE
        self._not_before = self.clock()

    def block(self, term: int) -> None:
        """Handing leadership over: no lease for the rest of `term`."""
        self._blocked_term = term
        self.drop()

    def remaining(self, term: int) -> float:
        held_term, until = self.published
        return max(0.0, until - self.clock()) if held_term == term else 0.0


class MemberView(Protocol):
    """What stickiness needs from the Raft member (Raft thread)."""

    def current_term(self) -> int: ...
    def leader_node(self) -> Hashable | None: ...
    def is_leader(self) -> bool: ...
    def follows(self, node: Hashable) -> bool: ...  # a follower whose leader is `node`
    def defer_election(self, seconds: float) -> bool: ...  # False: a hand-over forces an election


class Stickiness:
    """The follower's side (see the module doc); `on_message` sees every Raft message first."""

    def __init__(self, view: MemberView, lease: Lease, window: float, enabled: bool = True,
                 clock: Callable[[], float] = lease_clock) -> None:
        self.view = view
        self.lease = lease
        self.window = window
        self.enabled = enabled
        self.clock = clock
        self.started = clock()
        self.heard_at = -math.inf
        self._released: tuple[Hashable, int] | None = None  # (leader, term) that handed over
        self.votes_ignored = 0

    def on_message(self, node: Hashable, message: dict[str, Any]) -> bool:
        """True when the message must be dropped (a RequestVote this node ignores)."""
        kind = message.get("type")
        term = message.get("term")
        if not isinstance(term, int):
            return False
        if kind == "append_entries" and term >= self.view.current_term():
            self.heard_at = self.clock()  # pysyncobj takes the sender as its leader
            if term > self.view.current_term():
                self.lease.drop()  # another leader exists: ours is over anyway
        elif kind == RELEASE and self.view.follows(node) and term == self.view.current_term():
            self._released = (node, term)
        elif kind == "request_vote":
            if self.ignores_vote(node, term):
                self.votes_ignored += 1
                log.info("ignored a vote request from %s for term %s: heard from leader %s %.3f s ago",
                         node, term, self.view.leader_node(), self.clock() - self.heard_at)
                return True
            if term > self.view.current_term():
                self.lease.drop()  # before pysyncobj raises our term and may grant
        return False

    def ignores_vote(self, candidate: Hashable, vote_term: int) -> bool:
        if not self.enabled or self.view.is_leader():
            return False
        now = self.clock()
        if now - self.started < self.window:
            return True  # promises made before a restart are forgotten: keep them by waiting
        leader = self.view.leader_node()
        if leader is None or leader == candidate or now - self.heard_at >= self.window:
            return False  # (our leader standing again has given up its own lease first)
        term = self.view.current_term()
        return not (self._released == (leader, term) and vote_term == term + 1)

    def promise(self, node: Hashable, term: int) -> bool:
        """A probe from `node` in `term`: promise it stickiness if we follow it in that term."""
        if not self.enabled or term != self.view.current_term() or not self.view.follows(node):
            return False
        now = self.clock()
        if not self.view.defer_election(self.window):
            return False
        self.heard_at = now
        return True
