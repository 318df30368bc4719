"""ReadIndex (Raft thesis §6.4): linearizable reads without log entries.

Runs on the Raft thread (pysyncobj's tick thread); the asyncio thread only
hands in requests (`request`, thread-safe) and gets called back.

**On the leader.** A read needs a *read index*: the leader's commit index,
taken after the read arrived, once the leader has committed an entry of its
own term (its no-op; before that its commit index may lag what earlier leaders
committed). The leader then proves it still leads: it sends every member a
`fsm_read_probe` carrying its term and a round number, and the round is
confirmed when a majority (counting itself) answered `fsm_read_ack` in that
term. A member answers with its own current term, and one that has voted in a
later term has a later term forever, so a majority acking term T after the read
arrived means no later leader had been elected by then (a later leader needs a
majority of votes in its term, and the two majorities share a member). All
reads that arrived before a round started share it; reads arriving while it is
out wait for the next one (at most one round in flight). Confirmed reads are
released once this node has applied the read index.

**On a follower.** The follower asks the leader (`fsm_read_index`, one small
message shared by every read gathered meanwhile); the leader runs the request
through its next round and answers `fsm_read_index_answer` with the read index;
the follower releases the reads once it has applied that index and serves them
from its own state. A leader change re-asks the new leader; a leader that stops
leading answers an error (the reader gets 503).

**Under a lease** (lease.py, `--read-lease on`): a round answered by a majority
whose acks carry the stickiness promise extends the leader's lease from the
time the round was sent. While it holds, the leader confirms reads (and
followers' questions) at once with its current commit index, and the asyncio
thread serves a read without a hop when this node has applied its commit index
(`lease_read`). Empty rounds every heartbeat period keep the lease warm under a
read-only load. Without a lease a cut-off leader cannot confirm a round, so its
reads wait until their deadline and are refused, never answered from stale state.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pysyncobj.syncobj import _RAFT_STATE

from cluster.errors import Timeout, Unavailable
from cluster.loop_inbox import inbox_of

from .lease import Lease, lease_clock

# called on the Raft thread with None (serve the read now) or an error message
ReadCallback = Callable[[str | None], None]

PROBE, ACK = "fsm_read_probe", "fsm_read_ack"
ASK, ANSWER = "fsm_read_index", "fsm_read_index_answer"
MESSAGE_TYPES = frozenset({PROBE, ACK, ASK, ANSWER})
_FOLLOWER = _RAFT_STATE.FOLLOWER
ROUND_RETRY_SECONDS = 0.3  # a round (or a follower's question) unanswered this long is sent again


class RaftView(Protocol):
    """What ReadIndex needs from the Raft member; every call happens on the Raft thread."""

    def is_leader(self) -> bool: ...
    def current_term(self) -> int: ...
    def commit_index(self) -> int: ...
    def applied_index(self) -> int: ...
    def leader_committed_own_entry(self) -> bool: ...
    def leader_node(self) -> Hashable | None: ...
    def voters(self) -> Sequence[Hashable]: ...  # the other members
    def send(self, node: Hashable, message: dict[str, Any]) -> None: ...


@dataclass
class _Waiter:
    callbacks: list[ReadCallback]  # local readers (on a follower: asked the leader through us)
    remote: list[tuple[Hashable, int]]  # (follower, its question id): answered, not released
    deadline: float


@dataclass
class _Round:
    seq: int
    term: int
    index: int
    waiters: list[_Waiter]
    started: float  # lease_clock, taken before the probes were sent
    acks: set[Hashable] = field(default_factory=set)
    sticky: set[Hashable] = field(default_factory=set)  # acks that carried the promise


class ReadIndex:
    def __init__(self, raft: RaftView, timeout: float, clock: Callable[[], float] = lease_clock,
                 lease: Lease | None = None, promise: Callable[[Hashable, int], bool] | None = None,
                 renew_every: float = 0.1):
        self.raft = raft
        self.timeout = timeout
        self.clock = clock
        self.lease = lease if lease is not None and lease.enabled else None
        self.promise = promise  # stickiness: may this node promise the prober not to vote?
        self.renew_every = renew_every  # an empty round this often keeps the lease warm
        self._last_round_at = -1e18
        self._inbox: collections.deque[ReadCallback] = collections.deque()  # from asyncio
        self._inbox_lock = threading.Lock()
        self._pending: list[_Waiter] = []  # not yet in a round (leader) or asked (follower)
        self._round: _Round | None = None
        self._seq = 0
        self._asked: dict[int, tuple[_Waiter, Hashable, float]] = {}  # follower: id -> question
        self._ask_seq = 0
        self._ready: list[tuple[int, _Waiter]] = []  # confirmed: released once applied >= index
        self.rounds = 0  # rounds the leader started (metrics, tests)
        self.questions = 0  # questions a follower sent its leader
        self.lease_rounds = 0  # empty rounds sent only to keep the lease
        self.lease_confirms = 0  # batches of reads / questions confirmed under the lease

    # -- the asyncio thread ---------------------------------------------------------

    def request(self, callback: ReadCallback) -> None:
        """Queue one read (or one batch of reads); `callback` runs on the Raft thread."""
        with self._inbox_lock:
            self._inbox.append(callback)

    # -- the Raft thread --------------------------------------------------------------

    def on_tick(self) -> None:
        now = self.clock()
        with self._inbox_lock:
            arrived, self._inbox = list(self._inbox), collections.deque()
        if arrived:
            self._pending.append(_Waiter(arrived, [], now + self.timeout))
        self._expire(now)
        if self.raft.is_leader():
            self._take_back_questions()
            self._lead(now)
        else:
            if self.lease is not None:
                self.lease.drop()
            self._abandon_round("this node stopped leading before the read was confirmed")
            self._follow(now)
        self._release()

    def on_message(self, node: Hashable, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == PROBE:
            # my term, whatever it is: the leader counts only acks in its own term
            ack = {"type": ACK, "seq": message.get("seq"), "term": self.raft.current_term()}
            term = message.get("term")
            if self.promise is not None and isinstance(term, int) and self.promise(node, term):
                ack["sticky"] = True
            self.raft.send(node, ack)
        elif kind == ACK:
            self._on_ack(node, message)
        elif kind == ASK:
            waiter = _Waiter([], [(node, int(message.get("id", 0)))], self.clock() + self.timeout)
            if self.raft.is_leader():
                self._pending.append(waiter)
                self._lead(self.clock())
            else:
                self._fail(waiter, "the node asked for a read index is not the leader")
        elif kind == ANSWER:
            self._on_answer(message)
        self._release()

    # -- leader -------------------------------------------------------------------------

    def _lead(self, now: float) -> None:
        current = self._round
        if current is not None and (current.term != self.raft.current_term()):
            self._abandon_round("the leader's term changed before the read was confirmed")
            current = None
        if current is not None and now - current.started > ROUND_RETRY_SECONDS:
            # probes or acks lost (a connection dropped): the reads join a fresh round
            self._pending[:0] = current.waiters
            self._round = current = None
        if self._pending and self._lease_holds():
            self.lease_confirms += len(self._pending)
            self._confirmed(self._pending, self.raft.commit_index())
            self._pending = []
        if current is not None or not (self._pending or self._lease_due(now)):
            return
        if not self.raft.leader_committed_own_entry():
            return  # until then the commit index may be behind what earlier leaders committed
        self._seq += 1
        if self._pending:
            self.rounds += 1
        else:
            self.lease_rounds += 1
        self._last_round_at = now
        self._round = _Round(self._seq, self.raft.current_term(), self.raft.commit_index(),
                             self._pending, now)
        self._pending = []
        probe = {"type": PROBE, "term": self._round.term, "seq": self._round.seq}
        for node in self.raft.voters():
            self.raft.send(node, probe)
        self._maybe_confirm()

    def _lease_holds(self) -> bool:
        # a fresh clock reading (not the tick's): an earlier one errs on the unsafe side
        return (self.lease is not None and self.lease.holds(self.raft.current_term(), self.clock())
                and self.raft.leader_committed_own_entry())

    def _lease_due(self, now: float) -> bool:
        return self.lease is not None and now - self._last_round_at >= self.renew_every

    def lease_read(self) -> bool:
        """On the asyncio thread: may a read be served now, from this node's state, without
        a round and without a hop to the Raft thread? Yes while this node leads under a
        lease and has applied its commit index (read after the lease was checked). The
        reads are of fields the Raft thread publishes whole; lease.py says why that is safe."""
        lease = self.lease
        if lease is None or not lease.holds(self.raft.current_term(), self.clock()):
            return False
        if not self.raft.is_leader():
            return False
        commit = self.raft.commit_index()
        return self.raft.applied_index() >= commit

    def _on_ack(self, node: Hashable, message: dict[str, Any]) -> None:
        current = self._round
        if current is None or message.get("seq") != current.seq or message.get("term") != current.term:
            return
        if not self.raft.is_leader() or self.raft.current_term() != current.term:
            return
        current.acks.add(node)
        if message.get("sticky") is True:
            current.sticky.add(node)
        self._maybe_confirm()

    def _maybe_confirm(self) -> None:
        current = self._round
        assert current is not None
        voters = set(self.raft.voters())
        if 2 * (len(current.acks & voters) + 1) <= len(voters) + 1:
            return
        self._round = None
        if self.lease is not None and 2 * (len(current.sticky & voters) + 1) > len(voters) + 1:
            self.lease.extend(current.term, current.started)
        self._confirmed(current.waiters, current.index)
        if self._pending:
            self._lead(self.clock())

    def _confirmed(self, waiters: list[_Waiter], index: int) -> None:
        for waiter in waiters:
            for node, question in waiter.remote:
                self.raft.send(node, {"type": ANSWER, "id": question, "index": index})
            if waiter.callbacks:
                self._ready.append((index, waiter))

    def _abandon_round(self, why: str) -> None:
        if self._round is not None:
            for waiter in self._round.waiters:
                self._fail(waiter, why)
            self._round = None
        if self._pending and any(w.remote for w in self._pending):
            for waiter in [w for w in self._pending if w.remote]:
                self._fail(waiter, why)
            self._pending = [w for w in self._pending if not w.remote]

    # -- follower -----------------------------------------------------------------------

    def _follow(self, now: float) -> None:
        leader = self.raft.leader_node()
        for question, (waiter, asked, sent) in list(self._asked.items()):
            if asked != leader or now - sent > ROUND_RETRY_SECONDS:
                del self._asked[question]  # a new leader, or lost: ask (the new leader) again
                self._pending.append(waiter)
        if not self._pending:
            return
        if leader is None:
            for waiter in self._pending:
                self._fail(waiter, "no leader is known (election in progress or no quorum)")
            self._pending = []
            return
        if self._asked:
            return  # one question in flight; the next carries everything gathered meanwhile
        waiter = _Waiter([cb for w in self._pending for cb in w.callbacks], [],
                         min(w.deadline for w in self._pending))
        self._pending = []
        self._ask_seq += 1
        self.questions += 1
        self._asked[self._ask_seq] = (waiter, leader, now)
        self.raft.send(leader, {"type": ASK, "id": self._ask_seq})

    def _take_back_questions(self) -> None:
        for waiter, _leader, _sent in self._asked.values():
            self._pending.append(waiter)  # now this node leads: it confirms them itself
        self._asked.clear()

    def _on_answer(self, message: dict[str, Any]) -> None:
        asked = self._asked.pop(int(message.get("id", -1)), None)
        if asked is None:
            return
        waiter = asked[0]
        if message.get("error"):
            self._fail(waiter, str(message["error"]))
        else:
            self._ready.append((int(message["index"]), waiter))

    # -- both ---------------------------------------------------------------------------

    def _release(self) -> None:
        if not self._ready:
            return
        applied = self.raft.applied_index()
        keep = []
        for index, waiter in self._ready:
            if index <= applied:
                for callback in waiter.callbacks:
                    callback(None)
            else:
                keep.append((index, waiter))
        self._ready = keep

    def _expire(self, now: float) -> None:
        """Readers give up on their side at the deadline; forget them here too."""
        self._pending = [w for w in self._pending if w.deadline > now]
        self._ready = [(i, w) for i, w in self._ready if w.deadline > now]

    def _fail(self, waiter: _Waiter, why: str) -> None:
        for callback in waiter.callbacks:
            callback(why)
        for node, question in waiter.remote:
            self.raft.send(node, {"type": ANSWER, "id": question, "error": why})


class PysyncobjView:
    """`RaftView` over pysyncobj 0.3.17's private attributes (checked by `journal.adopt`)."""

    def __init__(self, member: Any) -> None:
        self.m = member

    def is_leader(self) -> bool:
        return bool(self.m._isLeader())

    def current_term(self) -> int:
        return int(self.m._SyncObj__raftCurrentTerm)

    def commit_index(self) -> int:
        return int(self.m._SyncObj__raftCommitIndex)

    def applied_index(self) -> int:
        return int(self.m._SyncObj__raftLastApplied)

    def leader_committed_own_entry(self) -> bool:
        noop = self.m._SyncObj__noopIDx  # the no-op pysyncobj logs when it becomes leader
        return noop is not None and self.m._SyncObj__raftCommitIndex >= noop

    def leader_node(self) -> Hashable | None:
        leader: Hashable | None = self.m._SyncObj__raftLeader
        return leader

    def voters(self) -> Sequence[Hashable]:
        return list(self.m._SyncObj__otherNodes)

    def send(self, node: Hashable, message: dict[str, Any]) -> None:
        self.m._SyncObj__transport.send(node, message)

    def follows(self, node: Hashable) -> bool:
        return self.m._SyncObj__raftState == _FOLLOWER and self.m._SyncObj__raftLeader == node

    def defer_election(self, seconds: float) -> bool:
        """No election of our own for `seconds`; False while a hand-over forces one."""
        if self.m._SyncObj__transferInProgress:
            return False
        until = time.monotonic() + seconds  # pysyncobj's election clock
        if self.m._SyncObj__raftElectionDeadline < until:  # drawn afresh, as a heartbeat does
            self.m._SyncObj__raftElectionDeadline = max(
                until, time.monotonic() + self.m._SyncObj__generateRaftTimeout())
        return True

    def wake(self) -> None:
        """Wake the Raft thread's poller (from any thread), as a proposal does."""
        notifier = getattr(self.m, "_SyncObj__pipeNotifier", None)
        if notifier is not None:
            notifier.notify()


async def wait_read_index(read_index: ReadIndex, wake: Callable[[], None], timeout: float) -> None:
    """On the asyncio thread: request a read, wake the Raft thread, wait for the verdict."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str | None] = loop.create_future()

    def settle(error: str | None) -> None:
        if not future.done():
            future.set_result(error)

    inbox = inbox_of(loop)

    def callback(error: str | None) -> None:  # on the Raft thread
        inbox.call(settle, error)

    read_index.request(callback)
    wake()
    try:
        error = await asyncio.wait_for(future, timeout)
    except TimeoutError:
        raise Timeout("the read index was not confirmed in time") from None
    if error is not None:
        raise Unavailable(error)
