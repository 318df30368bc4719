"""A node's Raft member (pysyncobj) and the asyncio-facing `RaftNode` the API uses.

`RaftMember` is the one SyncObj subclass: its replicated methods (`apply_entry`,
`apply_group`) decode committed entries and run them through the pure engine;
pysyncobj runs them on its own thread, and the leader stamps their time as it
appends them (`_applyCommand`, clock.py). `RaftNode` lives on the asyncio thread:
it proposes entries, waits for their outcome, serves linearizable
reads through ReadIndex (read_index.py), and reports status. Results cross from the Raft
thread to asyncio only via `loop.call_soon_threadsafe`. See DESIGN.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from pysyncobj import FAIL_REASON, SyncObj, replicated

from cluster import gc_policy
from cluster.config import Settings
from cluster.core import engine
from cluster.core.entries import Command, CorruptEntry, Entry, Tick, decode, encode
from cluster.core.outcome import Outcome, Rejection
from cluster.core.state import ClusterState
from cluster.errors import ClusterError, Timeout, Unavailable
from cluster.events.window import EventWindow
from cluster.logs import REQUEST_ID
from cluster.storage.background_dump import BackgroundSnapshotHooks
from cluster.storage.node_storage import NodeStorage
from cluster.storage.projection import ProjectionStatus
from cluster.storage.snapshot_file import SnapshotInfo

from .clock import LeaderClock, stamp_command
from .conf import build_conf
from .durability import DurableMember, check_adopted, journal_for_init
from .group_commit import GroupCommit
from .journal import DurableJournal, align_with_dump, sync_file
from .log_guard import SnapshotGuard, without_needless_truncation
from .membership import HandOver, Membership, MembershipApi
from .read_index import MESSAGE_TYPES, PysyncobjView, ReadIndex, wait_read_index
from .reads import ReadBarrier
from .status import RaftStatus
from .sync_stats import SyncStats

log = logging.getLogger("fsmcluster.raft")
T = TypeVar("T")

STATUS_REFRESH_SECONDS = 0.05
TICK_RETRY_SECONDS = 2.0

# Failures after which the entry is certainly not in the log (safe to retry).
_NOT_APPLIED = {
    FAIL_REASON.QUEUE_FULL: "the proposal queue is full",
    FAIL_REASON.MISSING_LEADER: "no leader is known",
    FAIL_REASON.NOT_LEADER: "the node we sent it to is no longer the leader",
    FAIL_REASON.REQUEST_DENIED: "the leader refused the request",
    FAIL_REASON.DISCARDED: "a new leader replaced the entry before it committed",
}


class RaftMember(DurableMember, SyncObj):  # type: ignore[misc]
    def __init__(
        self,
        settings: Settings,
        on_snapshot_written: Callable[[int | None], None] = lambda index: None,
        events: EventWindow | None = None,
    ) -> None:
        # everything the Raft thread touches must exist before SyncObj starts it
        self.state = ClusterState(idempotency_window_ms=int(settings.idempotency_window * 1000))
        self.state_lock = threading.Lock()
        self.snapshots = BackgroundSnapshotHooks(lambda: self.state, self._replace_state, log.info,
                                                 on_written=on_snapshot_written,
                                                 dump_file=settings.snapshot_file)
        self.status_view = RaftStatus.initial(settings.raft)
        self.applied_listeners: list[Callable[[Entry, Outcome], None]] = []
        self.events = events  # the feed's window: filled after each apply, reset by a snapshot
        if events is not None:  # before SyncObj starts: the journal replay fills it too
            self.applied_listeners.append(lambda e, o: events.append_entry(e.index, o.events))
        self.applied_through = 0  # index of the last entry apply_entry finished
        self.snapshot_guard = SnapshotGuard()
        self._leader_seen: object = None
        self._leader_changes = 0
        self._status_at = 0.0
        self._tick_sent_at = 0.0
        self.clock = LeaderClock(settings.clock_offset_ms)
        self._stamped_ids: frozenset[int] | None = None
        self.handover = HandOver()  # membership.py: leadership transfer, driven from _on_raft_tick
        self.removed = False  # set when this node applies its own removal
        self._held = []  # append answers waiting for a sync (durability.py)
        journal = DurableJournal(str(settings.journal_file), fsync=settings.fsync == "always")
        conf = build_conf(settings, self.snapshots, deserializer=self._load_dump)
        with journal_for_init(journal):  # our journal instead of pysyncobj's mmap'd one
            super().__init__(settings.raft, [p.raft for p in settings.peers], conf)
        check_adopted(self, journal)
        # pysyncobj numbers the commands a follower forwards from 0 in every process, and
        # matches the leader's answer by that number alone. After a restart, a late answer
        # meant for the previous process (the leader sends it to the node's new connection)
        # would be taken as the answer to a new command: its client would be told the
        # outcome of someone else's entry. Starting each process at its start time in ns
        # keeps the numbers of two incarnations apart.
        self._SyncObj__commandsLocalCounter = time.time_ns()
        self.raft_view = PysyncobjView(self)
        self.read_index = ReadIndex(self.raft_view, timeout=settings.read_timeout)
        self.addOnTickCallback(self._on_raft_tick)
        self.addOnTickCallback(self.sync_journal)  # last before the tick waits for the network

    @replicated
    def apply_entry(self, blob: bytes, stamp: int | None = None) -> Outcome:
        """`stamp`: the leader's time for the entry (`_applyCommand`); None in old logs."""
        entry, outcome = self._apply_blob(blob, last=True, stamp=stamp)
        self._notify(entry, outcome)
        return outcome

    @replicated
    def apply_group(self, blobs: tuple[bytes, ...], stamp: int | None = None) -> list[Outcome]:
        """Group commit (group_commit.py): entries that share one Raft entry, applied in order."""
        last = len(blobs) - 1
        applied = [self._apply_blob(blob, i == last, stamp) for i, blob in enumerate(blobs)]
        outcomes = [outcome for _, outcome in applied]
        # listeners see one call per Raft index, as for a batch: every event, in order
        events = tuple(event for outcome in outcomes for event in outcome.events)
        self._notify(applied[-1][0], Outcome("ok", events=events, results=tuple(outcomes)))
        return outcomes

    def _apply_blob(self, blob: bytes, last: bool, stamp: int | None) -> tuple[Entry, Outcome]:
        index = self.raftLastApplied + 1
        try:
            entry = decode(blob, index)
            if stamp is not None:
                entry = dataclasses.replace(entry, at_ms=stamp)
        except CorruptEntry as exc:
            # applying anything else would diverge from the other members: stop the node
            log.critical("log entry %d cannot be decoded, stopping: %s", index, exc)
            logging.shutdown()
            os._exit(70)
        with self.state_lock:
            try:
                outcome = engine.apply(self.state, entry)
            except Exception as exc:  # an engine bug: refuse the entry the same way everywhere
                log.exception("applying entry %d failed", index, extra={"request_id": entry.request_id})
                outcome = Outcome.rejected(Rejection("internal", f"internal error: {exc}"))
            if log.isEnabledFor(logging.DEBUG):  # every node names the request it applies
                log.debug("applied entry %d: %s -> %s", index, entry.command.kind, outcome.status,
                          extra={"request_id": entry.request_id, "index": index})
            if last:  # of its Raft entry: pysyncobj bumps raftLastApplied only after apply
                # returns (and after the callbacks ran); the X-Raft-Applied-Index header
                self.applied_through = index
        return entry, outcome

    def _notify(self, entry: Entry, outcome: Outcome) -> None:
        for listener in self.applied_listeners:
            try:
                listener(entry, outcome)
            except Exception:
                log.exception("applied-entry listener failed")

    def _applyCommand(self, command: bytes, callback: Any, commandType: int | None = None) -> None:  # noqa: N802, N803
        # pysyncobj's entry point for every command this node appends or forwards: our own
        # (commandType given) and those a follower forwarded to us (type byte included).
        # The leader stamps its time on ours and theirs here; a follower stamps nothing.
        if self._isLeader():
            command = self._stamped(command, commandType)
        super()._applyCommand(command, callback, commandType)

    def _stamped(self, command: bytes, command_type: int | None) -> bytes:
        if self._stamped_ids is None:
            self._stamped_ids = frozenset(
                self._methodToID[self._getFuncName(name)] for name in ("apply_entry", "apply_group")
            )
        return stamp_command(command, command_type, self._stamped_ids, self.clock.stamp)

    def _SyncObj__onMessageReceived(self, node: Any, message: Any) -> None:  # noqa: N802
        # pysyncobj binds its message handler by this (name-mangled) attribute, so this
        # override sees every Raft message first; see log_guard for why.
        if isinstance(message, dict) and message.get("type") in MESSAGE_TYPES:
            self.read_index.on_message(node, message)  # ReadIndex's own messages (read_index.py)
            return
        if isinstance(message, dict) and message.get("type") == "append_entries":
            # each guard passes through the messages it does not own (appends / snapshots)
            log, commit_index = self._SyncObj__raftLog, self._SyncObj__raftCommitIndex
            message = without_needless_truncation(log, message, commit_index)
            message = self.snapshot_guard.filter(log, message, commit_index)
        SyncObj._SyncObj__onMessageReceived(self, node, message)

    def _SyncObj__doChangeCluster(self, request: Any, reverse: bool = False) -> bool:  # noqa: N802
        # pysyncobj calls this (name-mangled) for each membership entry it logs or
        # replays; a removed node keeps running but learns it is no longer a member
        if request[1] == self.selfNode.id and request[0] in ("add", "rem"):
            self.removed = (request[0] == "rem") != reverse
            if self.removed:
                log.warning("this node was removed from the cluster; it no longer takes part")
        return bool(SyncObj._SyncObj__doChangeCluster(self, request, reverse))

    def _checkCommandsToApply(self) -> None:  # noqa: N802
        if self.handover.holds(self._isLeader()):
            return  # handing leadership over: new commands wait until it is done
        super()._checkCommandsToApply()

    def _load_dump(self, path: str) -> tuple[Any, ...]:
        if self.journal.fsync:  # pysyncobj renames a dump received from the leader into place unsynced
            sync_file(path)  # it must be on disk before the journal is cut to it and the leader is answered
        raft_data = self.snapshots.deserialize(path)
        gc_policy.freeze_loaded_state()
        align_with_dump(self._SyncObj__raftLog, raft_data)  # before pysyncobj compares them
        self._give_up_on_replaced_entries(raft_data[0][1])
        if self.events is not None:
            self.events.reset(raft_data[0][1])
        return raft_data

    def _give_up_on_replaced_entries(self, last_index: int) -> None:
        """Answer proposals whose log positions a received snapshot replaced: outcome unknown.

        pysyncobj calls back when it applies a proposal's index; a snapshot
        jumps over those indexes, so their callbacks would wait forever (and
        their clients until their timeout). The snapshot may or may not hold
        the proposal, so the answer is "unknown" (504), not "not applied".
        """
        waiting = self._SyncObj__commandsWaitingCommit
        for index in [i for i in waiting if i <= last_index]:
            for _term, callback in waiting.pop(index):
                callback(None, FAIL_REASON.UNKNOWN_OUTCOME)

    def _replace_state(self, state: ClusterState) -> None:
        with self.state_lock:
            self.state = state

    # -- the Raft thread's periodic work ----------------------------------

    def _on_raft_tick(self) -> None:
        now = time.monotonic()
        if now - self._status_at >= STATUS_REFRESH_SECONDS:
            self._status_at = now
            self._refresh_status()
        if self._isLeader():
            self.handover.tick(self.transferLeadership)
            self._propose_due_tick(now)
        self.read_index.on_tick()

    def _refresh_status(self) -> None:
        raw = self.getStatus()
        leader = raw.get("leader")
        if leader is not None and leader != self._leader_seen:
            self._leader_changes += 1
            log.info("leader is now %s (term %s)", leader, raw.get("raft_term"))
        self._leader_seen = leader
        others = [node.id for node in self.otherNodes]
        self.status_view = RaftStatus.from_pysyncobj(raw, others, self.isReady(), self._leader_changes)

    def _propose_due_tick(self, now: float) -> None:
        """Timers fire through `Tick` entries that only the leader proposes."""
        due = self.state.next_deadline_ms()
        now_ms = self.clock.wall_ms()
        if due is None or now_ms < due or now - self._tick_sent_at < TICK_RETRY_SECONDS:
            return
        self._tick_sent_at = now
        entry = Entry(Tick(), at_ms=now_ms, request_id=uuid.uuid4().hex)
        self.apply_entry(encode(entry), callback=self._tick_done)

    def _tick_done(self, _result: object, _error: int) -> None:
        self._tick_sent_at = 0.0


class RaftNode(MembershipApi):
    """The cluster as the HTTP layer sees it; every method runs on the asyncio thread
    (the member addresses and changes it offers are in membership.py)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.member: RaftMember | None = None
        self.storage: NodeStorage | None = None
        # readers arriving while one read-index request is out share the next (reads.py)
        self.reads = ReadBarrier(self._read_index)
        self._request_prefix = uuid.uuid4().hex[:16] + "-"
        self._request_seq = 0
        self.group = GroupCommit(
            lambda blob, cb: self._require_member().apply_entry(blob, callback=cb),
            lambda blobs, cb: self._require_member().apply_group(blobs, callback=cb),
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
        """Commit one entry and return its outcome as applied on this node.

        Raises `Unavailable` (not applied; safe to retry) or `Timeout` (unknown).
        """
        member = self._require_member()
        status = member.status_view
        if status.leader is None:
            raise Unavailable("no leader is known (election in progress or no quorum)")
        if status.is_leader and not status.has_quorum:
            raise Unavailable("this leader cannot reach a quorum of members")
        if not status.is_leader and not status.leader_connected:
            # pysyncobj would drop the forwarded command on the floor: say so now
            raise Unavailable(f"this node is not connected to the leader {status.leader}")
        entry = Entry(
            command,
            at_ms=0,  # unstamped: the leader stamps it as it appends it (RaftMember._applyCommand)
            request_id=REQUEST_ID.get() or self._next_request_id(),
            idempotency_key=idempotency_key,
            principal=principal,
        )
        submitted = self.group.submit(encode(entry), high=priority == "high")
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
        status = member.status_view
        if status.leader is None:
            raise Unavailable("no leader is known (election in progress or no quorum)")
        if status.is_leader and not status.has_quorum:
            raise Unavailable("this leader cannot reach a quorum of members")
        if not status.is_leader and not status.leader_connected:
            raise Unavailable(f"this node is not connected to the leader {status.leader}")
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

        def callback(result: Any, error: int) -> None:  # on the Raft thread
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
                loop.call_soon_threadsafe(settle, result, error)

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


def _failure(error: int, timeout: float) -> ClusterError:
    if error in _NOT_APPLIED:
        return Unavailable(f"not applied: {_NOT_APPLIED[error]}")
    # LEADER_CHANGED, UNKNOWN_OUTCOME: the leader may have logged the entry before failing
    return Timeout(
        f"outcome unknown (raft error {error}); the change may or may not apply: "
        "retry with the same Idempotency-Key"
    )
