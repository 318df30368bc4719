"""Members that know each other, and membership changes that keep a quorum.

Addresses: Raft knows members by their Raft address only. Each node publishes
its HTTP address and name through the log (a `Member` entry, see
core/members.py) once it sees a leader, and again whenever the replicated value
differs from its own (idempotent), so every node can name every member's HTTP
address and the leader's.

Changes (`add`, `remove`) run on the leader, one at a time (`change_in_progress`
while one is unfinished), and are refused (`unsafe_change`) when the new
configuration would have no reachable majority: an added member must answer on
its Raft port, and the members the leader reaches (not counting the new one)
must be a majority of the new configuration, as etcd's strict reconfiguration
check. The
leader cannot remove itself (pysyncobj refuses), so it hands leadership over
first (`HandOver`): it stops appending new commands, waits until the most
up-to-date follower has everything, and sends it pysyncobj's TimeoutNow.

Threads: `HandOver.tick` and `HandOver.holds` run on the Raft thread; the rest
runs on the asyncio thread and only reads the published `RaftStatus`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from pysyncobj import FAIL_REASON

from cluster.config import parse_address
from cluster.core.entries import Member
from cluster.core.members import MemberInfo
from cluster.errors import ClusterError, Refused, Unavailable

from .status import RaftStatus

if TYPE_CHECKING:
    from .node import RaftNode

log = logging.getLogger("fsmcluster.membership")

ANNOUNCE_PERIOD = 0.5  # seconds between checks that our published address is current
PROBE_TIMEOUT = 1.0  # seconds to open a TCP connection to a new member's Raft port
HANDOVER_RETRY = 0.1  # seconds between TimeoutNow attempts while handing over
HANDOVER_SECONDS = 5.0  # the longest a leader pauses new commands to hand over


def quorum(size: int) -> int:
    return size // 2 + 1


def reachable_members(status: RaftStatus, without: str | None = None) -> int:
    """The leader and the followers that are connected and have acknowledged entries of
    this leader (a TCP connection alone proves nothing: anything listening accepts it)."""
    return 1 + sum(1 for m in status.members
                   if m.raft != without and m.connected and (m.match_index or 0) > 0)


class HandOver:
    """A leader giving leadership away; `until` is written by asyncio, read by Raft."""

    def __init__(self) -> None:
        self.until = 0.0  # monotonic deadline; 0: not handing over
        self._last_try = 0.0
        self.transfers_sent = 0

    def start(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds

    def stop(self) -> None:
        self.until = 0.0

    def holds(self, is_leader: bool) -> bool:
        """On the Raft thread: keep new commands queued while a leader hands over."""
        return is_leader and time.monotonic() < self.until

    def tick(self, transfer: Callable[..., None]) -> None:
        """On the Raft thread, as leader: ask the best follower to take over (retried)."""
        now = time.monotonic()
        if now >= self.until or now - self._last_try < HANDOVER_RETRY:
            return
        self._last_try = now
        transfer(None, callback=self._sent)

    def _sent(self, _result: object, error: int) -> None:
        if error == FAIL_REASON.SUCCESS:
            self.transfers_sent += 1


async def raft_port_answers(raft: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether something accepts TCP connections on `raft` (a started node's Raft port)."""
    host, port = parse_address(raft, "raft")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class Membership:
    """The asyncio side: announcing our address, changing the configuration."""

    def __init__(self, node: RaftNode) -> None:
        self.node = node
        settings = node.settings
        self.me = MemberInfo(settings.http, settings.node_name or settings.raft)
        self._changing = False
        self._task: asyncio.Task[None] | None = None

    # -- addresses ---------------------------------------------------------

    def start(self) -> None:
        with contextlib.suppress(RuntimeError):  # no running loop: nothing announces
            self._task = asyncio.get_running_loop().create_task(self._announce_forever())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _announce_forever(self) -> None:
        while True:
            await asyncio.sleep(ANNOUNCE_PERIOD)
            try:
                await self.announce_once()
            except ClusterError as exc:
                log.debug("announcing our address failed (will retry): %s", exc)
            except Exception:
                log.exception("announcing our address failed")

    async def announce_once(self) -> bool:
        """Propose our address when the replicated one differs; True when proposed."""
        status = self.node.status()
        if status.leader is None or not status.leader_connected or self.node.removed:
            return False
        raft = self.node.settings.raft
        if self.node.read(lambda state: state.members.get(raft)) == self.me:
            return False
        await self.node.propose(Member(raft, self.me.http, self.me.name), timeout=5.0)
        log.info("published this node's address: raft %s http %s name %s", raft, self.me.http, self.me.name)
        return True

    def addresses(self) -> dict[str, MemberInfo]:
        """Raft address -> HTTP address and name: the replicated ones, else --peer's."""
        known = {p.raft: MemberInfo(p.http, p.raft) for p in self.node.settings.peers if p.http}
        known[self.node.settings.raft] = self.me
        known.update(self.node.read(lambda state: dict(state.members)))
        return known

    # -- changes (on the leader) -------------------------------------------

    @contextlib.asynccontextmanager
    async def _one_change(self) -> AsyncIterator[None]:
        if self._changing or self.node.change_pending():
            raise Refused("change_in_progress",
                          "another membership change is in progress; retry when it has committed")
        self._changing = True
        try:
            yield
        finally:
            self._changing = False

    def _leader_status(self) -> RaftStatus:
        status = self.node.status()
        if not status.is_leader:
            raise Unavailable(f"this node is not the leader (leader: {status.leader}); retry")
        return status

    async def add(self, raft: str, http: str | None, timeout: float) -> None:
        status = self._leader_status()
        current = {status.node} | {m.raft for m in status.members}
        if raft in current:  # already a member (a retried add, or a restarted --join node)
            await self._publish(raft, http)
            return
        async with self._one_change():
            if not await raft_port_answers(raft):
                raise Refused("unsafe_change", f"nothing answers on {raft}: start the new node first "
                              "(fsmcluster node ... --join URL), then add it")
            # as etcd's strict reconfiguration check, the new member does not count: the
            # members we reach now must be a quorum of the new configuration by themselves
            reachable = reachable_members(status)
            size = len(current) + 1
            if reachable < quorum(size):
                raise Refused("unsafe_change", f"after adding {raft}, only {reachable} of {size} members "
                              f"would be known reachable, fewer than the quorum of {quorum(size)}; "
                              "bring the unreachable members back (or remove them) first")
            await self.node.raft_call(lambda m, cb: m.addNodeToCluster(raft, callback=cb), timeout)
            await self._until_published(lambda members: raft in members)
            log.info("member %s added (http %s)", raft, http)
        await self._publish(raft, http)

    async def remove(self, raft: str, timeout: float) -> None:
        status = self._leader_status()
        current = {status.node} | {m.raft for m in status.members}
        if raft not in current:
            raise Refused("not_found", f"{raft} is not a member (members: {', '.join(sorted(current))})")
        if raft == status.node:
            raise Unavailable("the leader cannot remove itself: hand leadership over first")
        async with self._one_change():
            size = len(current) - 1
            reachable = reachable_members(status, without=raft)
            if size < 1 or reachable < quorum(size):
                raise Refused("unsafe_change", f"after removing {raft}, {reachable} of {size} members "
                              f"would be reachable, fewer than the quorum of {quorum(max(size, 1))}")
            await self.node.raft_call(lambda m, cb: m.removeNodeFromCluster(raft, callback=cb), timeout)
            await self._until_published(lambda members: raft not in members)
            log.info("member %s removed", raft)
        with contextlib.suppress(ClusterError):
            await self.node.propose(Member(raft, None), timeout=timeout)

    async def _until_published(self, done: Callable[[set[str]], bool], wait: float = 2.0) -> None:
        """Hold the change until the published status shows it (refreshed every 50 ms),
        so the next change's checks count the new configuration."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if done({m.raft for m in self.node.status().members}):
                return
            await asyncio.sleep(0.02)

    async def _publish(self, raft: str, http: str | None) -> None:
        if http is None:
            return
        known = self.node.read(lambda state: state.members.get(raft))
        if known is None or known.http != http:
            name = known.name if known is not None else raft
            await self.node.propose(Member(raft, http, name), timeout=5.0)

    async def hand_over(self, timeout: float = HANDOVER_SECONDS) -> str | None:
        """As leader, give leadership to the most up-to-date follower; the new leader or None.

        New commands wait (queued, not lost) while the followers catch up; a
        follower's forwarded commands answer 503 once we are no longer leader.
        """
        status = self.node.status()
        if not status.is_leader:
            return status.leader
        if reachable_members(status) < 2:
            return None  # no follower could take over (e.g. the last member stopping)
        member: Any = self.node.member
        if member is None:
            raise Unavailable("the Raft member is not running")
        member.handover.start(timeout)
        log.info("handing leadership over (term %s)", status.term)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                now = self.node.status()
                if now.leader is not None and now.leader != now.node and not now.is_leader:
                    log.info("leadership handed over to %s (term %s)", now.leader, now.term)
                    return now.leader
        finally:
            member.handover.stop()
        log.warning("could not hand leadership over within %.1fs", timeout)
        return None


class MembershipApi:
    """What `RaftNode` offers the HTTP layer about members (mixed into it)."""

    membership: Membership
    member: Any  # the RaftMember, None when stopped

    @property
    def http_of(self) -> dict[str, str | None]:
        """Raft address -> HTTP address of every member known."""
        return {raft: info.http for raft, info in self.membership.addresses().items()}

    def names(self) -> dict[str, str]:
        return {raft: info.name for raft, info in self.membership.addresses().items()}

    @property
    def removed(self) -> bool:
        return self.member is not None and bool(self.member.removed)

    async def add_member(self, raft: str, http: str | None, timeout: float) -> None:
        await self.membership.add(raft, http, timeout)

    async def remove_member(self, raft: str, timeout: float) -> None:
        await self.membership.remove(raft, timeout)

    async def hand_over(self, timeout: float) -> str | None:
        return await self.membership.hand_over(timeout)

    def change_pending(self) -> bool:
        """A membership change this leader logged has not been applied yet."""
        member = self.member
        if member is None:
            return False
        index = member._SyncObj__changeClusterIDx  # an int or None, replaced atomically
        return index is not None and bool(member.raftLastApplied < index)
