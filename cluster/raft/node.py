"""The asyncio-facing `RaftNode` the API uses (the Raft member itself is member.py).

`RaftNode` lives on the asyncio thread: it proposes entries, waits for their
outcome, serves linearizable reads through ReadIndex (read_index.py), and reports
status. Results cross from the Raft thread to asyncio only through the loop's
inbox (cluster/loop_inbox.py). See DESIGN.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from pysyncobj import FAIL_REASON

from cluster.config import Settings
from cluster.core.entries import Batch, Command, Entry, encode
from cluster.core.outcome import Outcome
from cluster.core.state import ClusterState
from cluster.errors import ClusterError, Overloaded, Timeout, Unavailable
from cluster.events.window import EventWindow
from cluster.logs import REQUEST_ID
from cluster.loop_inbox import inbox_of
from cluster.storage.node_storage import NodeStorage
from cluster.storage.projection import ProjectionStatus
from cluster.storage.snapshot_file import SnapshotInfo

from .group_commit import MAX_GROUP_BYTES, GroupCommit
from .member import RaftMember
from .membership import Membership, MembershipApi
from .read_index import wait_read_index
from .reads import ReadBarrier
from .status import RaftStatus
from .sync_stats import SyncStats

log = logging.getLogger("fsmcluster.raft")
T = TypeVar("T")

# Failures after which the entry is certainly not in the log (safe to retry).
_NOT_APPLIED = {
    FAIL_REASON.MISSING_LEADER: "no leader is known",
    FAIL_REASON.NOT_LEADER: "the node we sent it to is no longer the leader",
    FAIL_REASON.REQUEST_DENIED: "the leader refused the request",
    FAIL_REASON.DISCARDED: "a new leader replaced the entry before it committed",
}


class RaftNode(MembershipApi):
    """The cluster as the HTTP layer sees it; every method runs on the asyncio thread
    (the member addresses and changes it offers are in membership.py)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.member: RaftMember | None = None
        self.storage: NodeStorage | None = None
        # readers arriving while one read-index request is out share the next (reads.py)
        self.reads = ReadBarrier(self._read_index)
        self.lease_reads = 0  # linearizable reads served under the leader's lease at once
        self.round_reads = 0  # the others: through the Raft thread (ReadIndex, maybe its lease)
        self._request_prefix = uuid.uuid4().hex[:16] + "-"
        self._request_seq = 0
        self.group = GroupCommit(
            lambda blob, cb: self._require_member().apply_entry(blob, callback=cb),
            lambda blobs, cb: self._require_member().apply_group(blobs, callback=cb),
            # a group fits the leader's log budget (log_gate.py)
            max_group_bytes=max(1, min(MAX_GROUP_BYTES, settings.log_budget)),
        )
        self.membership = Membership(self)
        self.events = EventWindow(settings.events_window)

    def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.storage = storage = NodeStorage(self.settings)
        storage.recover()  # an empty data dir + --redis: the newest snapshot, before Raft starts
        self.member = member = RaftMember(self.settings, storage.notify_dump, self.events)
        storage.attach(member, lambda: member.status_view.is_leader, member.applied_listeners)
        self.membership.start()
        log.info("raft member %s started (peers: %s; fsync: %s)", self.settings.raft,
                 ", ".join(p.raft for p in self.settings.peers) or "none", self.settings.fsync)
        if self.settings.fsync == "off":
            log.warning("--fsync off: the journal is never synced; a power cut of a majority loses "
                        "acknowledged writes")

    def stop(self) -> None:
        self.membership.stop()
        if self.member is not None:
            self.member.destroy_synchronous()
            self.member = None
        if self.storage is not None:
            self.storage.stop()
            self.storage = None

    # -- writes -----------------------------------------------------------

    async def propose(
        self,
        command: Command,
        *,
        timeout: float,
        idempotency_key: str | None = None,
        principal: str | None = None,
        priority: str = "normal",
    ) -> Outcome:
        """Commit one entry and return its outcome as applied on this node (a follower's
        high-lane entry: as applied on the leader, if that is known first; the same outcome,
        cluster/raft/forward_answers.py).

        Raises `Unavailable` (not applied; safe to retry) or `Timeout` (unknown).
        """
        member = self._require_member()
        _check_leader_reachable(member.status_view)
        entry = Entry(
            command,
            at_ms=0,  # unstamped: the leader stamps it as it appends it (RaftMember._applyCommand)
            request_id=REQUEST_ID.get() or self._next_request_id(),
            idempotency_key=idempotency_key,
            principal=principal,
        )
        operations = len(command.operations) if isinstance(command, Batch) else 1
        submitted = self.group.submit(encode(entry), high=priority == "high", operations=operations)
        result, error = await self._wait(submitted, timeout)
        if error == FAIL_REASON.SUCCESS:
            assert isinstance(result, Outcome)
            return result
        raise _failure(error, timeout)

    def _next_request_id(self) -> str:
        # unique without a uuid4 (an os.urandom call) per request: a random per-process prefix
        self._request_seq += 1
        return f"{self._request_prefix}{self._request_seq:x}"

    async def _read_index(self) -> None:
        """Wait until this node has applied a read index confirmed after the call (read_index.py)."""
        member = self._require_member()
        _check_leader_reachable(member.status_view)
        await wait_read_index(member.read_index, member.raft_view.wake, self.settings.read_timeout)

    async def _call(
        self, start: Callable[[Callable[[Any, int], None]], None], timeout: float
    ) -> tuple[Any, int]:
        """Run a pysyncobj call that reports through `callback(result, error)` on its thread."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Any, int]] = loop.create_future()

        def settle(result: Any, error: int) -> None:
            if not future.done():
                future.set_result((result, error))

        inbox = inbox_of(loop)

        def callback(result: Any, error: int) -> None:  # on the Raft thread
            inbox.call(settle, result, error)

        start(callback)
        return await self._wait(future, timeout)

    async def _wait(self, future: asyncio.Future[tuple[Any, int]], timeout: float) -> tuple[Any, int]:
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise Timeout(
                f"no outcome within {timeout:g}s; the change may or may not apply: "
                "retry with the same Idempotency-Key"
            ) from None

    # -- reads ------------------------------------------------------------

    async def confirm_current(self, timeout: float) -> None:
        """Wait until this node has applied everything committed before the call."""
        member = self.member
        if member is not None and member.read_index.lease_read():
            self.lease_reads += 1  # the leader's lease holds: no round, no hop (lease.py)
            return
        self.round_reads += 1
        await self.reads.confirm(timeout)

    def read(self, fn: Callable[[ClusterState], T]) -> T:
        """Run `fn` on the local state; the Raft thread applies nothing meanwhile."""
        member = self._require_member()
        with member.state_lock:
            return fn(member.state)

    def status(self) -> RaftStatus:
        return self._require_member().status_view

    @property
    def applied_index(self) -> int:
        member = self._require_member()
        return max(int(member.raftLastApplied), member.applied_through)

    @property
    def commit_index(self) -> int:
        return int(self._require_member().raftCommitIndex)

    @property
    def sync_stats(self) -> SyncStats:
        return self._require_member().journal.stats

    @property
    def snapshot_info(self) -> SnapshotInfo:
        local = self._require_member().snapshots.info
        return self.storage.snapshot_info(local) if self.storage is not None else local

    @property
    def projection_info(self) -> ProjectionStatus | None:
        projection = self.storage.projection if self.storage is not None else None
        return projection.status if projection is not None else None

    # -- operations -------------------------------------------------------

    async def raft_call(self, call: Callable[[RaftMember, Callable[[Any, int], None]], None],
                        timeout: float) -> None:
        """Run a pysyncobj membership call; raise `Unavailable`/`Timeout` unless it committed."""
        member = self._require_member()
        _, error = await self._call(lambda cb: call(member, cb), timeout)
        if error != FAIL_REASON.SUCCESS:
            raise _failure(error, timeout)

    async def snapshot_now(self, timeout: float) -> SnapshotInfo:
        """Ask pysyncobj to compact the log now and wait (bounded) for the new snapshot."""
        member = self._require_member()
        before = member.snapshots.info
        deadline = time.monotonic() + timeout
        # when nothing was applied since the last snapshot pysyncobj would skip it
        if before.last_index != member.raftLastApplied:
            member.forceLogCompaction()
            while member.snapshots.info is before:
                if time.monotonic() >= deadline:
                    raise Timeout(f"no snapshot was written within {timeout:g}s")
                await asyncio.sleep(0.05)
        local = member.snapshots.info
        if self.storage is not None and local.ok and local.last_index is not None:
            # then wait (bounded, off the event loop) until the store has it or refused it
            wait = max(deadline - time.monotonic(), 0.1)
            await asyncio.to_thread(self.storage.wait_stored, local.last_index, wait)
        return self.snapshot_info

    def _require_member(self) -> RaftMember:
        if self.member is None:
            raise Unavailable("the Raft member is not running")
        return self.member


def _check_leader_reachable(status: RaftStatus) -> None:
    """Raise `Unavailable` unless a leader that can commit is reachable from this node."""
    if status.leader is None:
        raise Unavailable("no leader is known (election in progress or no quorum)")
    if status.is_leader and not status.has_quorum:
        raise Unavailable("this leader cannot reach a quorum of members")
    if not status.is_leader and not status.leader_connected:
        # pysyncobj would drop a forwarded command on the floor: say so now
        raise Unavailable(f"this node is not connected to the leader {status.leader}")


def _failure(error: int, timeout: float) -> ClusterError:
    if error == FAIL_REASON.QUEUE_FULL:  # the leader's log gate (or pysyncobj's queue) is full
        return Overloaded("the leader is overloaded and refused the entry (not applied); "
                          "retry after 1s")
    if error in _NOT_APPLIED:
        return Unavailable(f"not applied: {_NOT_APPLIED[error]}")
    # LEADER_CHANGED, UNKNOWN_OUTCOME: the leader may have logged the entry before failing
    return Timeout(
        f"outcome unknown (raft error {error}); the change may or may not apply: "
        "retry with the same Idempotency-Key"
    )
