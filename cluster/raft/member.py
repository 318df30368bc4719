"""A node's Raft member: the one pysyncobj SyncObj subclass, `RaftMember`.

Its replicated methods (`apply_entry`, `apply_group`) decode committed entries
and run them through the pure engine; pysyncobj runs them on its own thread, and
the leader stamps their time as it appends them (`_applyCommand`, clock.py). Its
overrides of pysyncobj's name-mangled hooks route ReadIndex messages, guard the
log (log_guard.py) and notice this node's removal. The asyncio side is node.py.
See DESIGN.md.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, replicated

from cluster.config import Settings
from cluster.core import engine
from cluster.core.entries import CorruptEntry, Entry, Tick, decode, encode
from cluster.core.outcome import Outcome, Rejection
from cluster.core.state import ClusterState
from cluster.events.window import EventWindow
from cluster.storage.background_dump import BackgroundSnapshotHooks

from .apply_budget import ApplyBudget
from .clock import LeaderClock, stamp_command
from .compaction import CompactionPolicy
from .conf import build_conf
from .durability import DurableMember, check_adopted, journal_for_init
from .forward_answers import FORWARD_RESULT, LeaderAnswers
from .journal import DurableJournal, align_with_dump, sync_file
from .lease import RELEASE, Lease, Stickiness, sticky_window
from .log_gate import (
    FORWARD_MESSAGE,
    HELD,
    REFUSED,
    HighCallback,
    HighForwarder,
    LogGate,
    unapplied_bytes,
)
from .log_guard import SnapshotGuard, without_needless_truncation
from .membership import HandOver
from .read_index import MESSAGE_TYPES, PysyncobjView, ReadIndex
from .status import RaftStatus
from .wire import plain_raft_messages

log = logging.getLogger("fsmcluster.raft")

STATUS_REFRESH_SECONDS = 0.05
TICK_RETRY_SECONDS = 2.0


class RaftMember(ApplyBudget, DurableMember, SyncObj):  # type: ignore[misc]
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
        self._held = []  # append answers waiting for a sync to cover them (durability.py)
        # the admission lanes in front of the log (log_gate.py)
        self.log_gate = LogGate(settings.log_budget, settings.admission_wait)
        self.high_forwarder = HighForwarder()
        self.leader_answers = LeaderAnswers()  # forward_answers.py
        self.raft_view = PysyncobjView(self)
        self._commit_sent = 0  # the commit index last sent ahead of the apply
        self._appends_held: bool | None = None  # while the leader logs queued commands: see below
        # lease.py: stickiness (on every node with --read-lease on) and the lease it allows;
        # before SyncObj starts: its journal replay and its thread use them
        window = sticky_window(settings.raft_min_timeout)
        self.lease = Lease(window, enabled=settings.read_lease)
        self.stickiness = Stickiness(self.raft_view, self.lease, window, enabled=settings.read_lease)
        journal = DurableJournal(str(settings.journal_file), fsync=settings.fsync == "always")
        conf = build_conf(settings, self.snapshots, deserializer=self._load_dump,
                          serializer=self.announce_then(self.snapshots.serialize))
        self.compaction = CompactionPolicy(settings.log_compaction_entries, settings.log_compaction_bytes,
                                           settings.leader_compaction_factor)
        plain_raft_messages()  # no zlib, no latin-1 round trip per message (wire.py)
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
        self.read_index = ReadIndex(self.raft_view, timeout=settings.read_timeout, lease=self.lease,
                                    promise=self.stickiness.promise,
                                    renew_every=settings.heartbeat_period)
        self.addOnTickCallback(self._on_raft_tick)
        self.addOnTickCallback(self.sync_journal)  # last before the tick waits: start syncing what it wrote

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

    def _apply_one(self, command: bytes, index: int, term: int) -> Any:
        result = super()._apply_one(command, index, term)
        if self.leader_answers:  # a follower waits for this entry's outcome, maybe
            self.leader_answers.applied(command, result, self._SyncObj__transport.send)
        return result

    def _applyCommand(self, command: bytes, callback: Any, commandType: int | None = None) -> None:  # noqa: N802, N803
        # pysyncobj's entry point for every command this node appends or forwards: our own
        # (commandType given) and those a follower forwarded to us (type byte included).
        # On the leader, the log gate decides when a command goes in (log_gate.py).
        if self._isLeader():
            verdict = self.log_gate.offer(command, callback, commandType)
            if verdict == REFUSED:  # a follower's command: it answers 429 overloaded
                self._SyncObj__callErrCallback(FAIL_REASON.QUEUE_FULL, callback)
            if verdict in (HELD, REFUSED):
                self.raft_view.wake()
                return
        elif isinstance(callback, HighCallback) and commandType is not None:
            self.high_forwarder.put(bytes([commandType]) + command, callback)
            self.raft_view.wake()
            return
        self._append(command, callback, commandType)

    def _append(self, command: bytes, callback: Any, command_type: int | None) -> bytes:
        """Into pysyncobj's queue; the leader stamps its time on ours and theirs here, a
        follower stamps nothing. Returns the command as queued."""
        if self._isLeader():
            command = self._stamped(command, command_type)
        super()._applyCommand(command, callback, command_type)
        return command

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
        if isinstance(message, dict) and message.get("type") == FORWARD_MESSAGE:
            command, request_id = message.get("command"), message.get("request_id")
            if isinstance(command, bytes) and isinstance(request_id, int):  # a follower's high lane
                self.log_gate.note_high()
                logged = self._append(command, (node, request_id), None)
                if self._isLeader():  # answered with our outcome too (forward_answers.py)
                    self.leader_answers.expect(logged, node, request_id)
            return
        if isinstance(message, dict) and message.get("type") == FORWARD_RESULT:
            self.high_forwarder.answered(message)
            return
        if isinstance(message, dict) and self.stickiness.on_message(node, message):
            return  # a RequestVote while we hear from a live leader (lease.py)
        if isinstance(message, dict) and message.get("type") == RELEASE:
            return  # stickiness noted it; pysyncobj does not know the type
        if isinstance(message, dict) and message.get("type") == "append_entries":
            # each guard passes through the messages it does not own (appends / snapshots)
            log, commit_index = self._SyncObj__raftLog, self._SyncObj__raftCommitIndex
            message = without_needless_truncation(log, message, commit_index)
            message = self.snapshot_guard.filter(log, message, commit_index)
        SyncObj._SyncObj__onMessageReceived(self, node, message)

    def transferLeadership(self, node: Any = None, callback: Any = None) -> None:  # noqa: N802
        # HandOver (membership.py) and pysyncobj's `transfer` utility command come here:
        # give the lease up for the rest of this term before the target may be elected,
        # and tell the followers, so their stickiness lets them vote for it (lease.py)
        if self._isLeader():
            term = self.raft_view.current_term()
            self.lease.block(term)
            for other in self.raft_view.voters():
                self.raft_view.send(other, {"type": RELEASE, "term": term})
        super().transferLeadership(node, callback)

    def _SyncObj__doChangeCluster(self, request: Any, reverse: bool = False) -> bool:  # noqa: N802
        # pysyncobj calls this (name-mangled) for each membership entry it logs or
        # replays; a removed node keeps running but learns it is no longer a member.
        # A lease counted acks against the old membership: drop it (lease.py)
        self.lease.drop()
        if request[1] == self.selfNode.id and request[0] in ("add", "rem"):
            self.removed = (request[0] == "rem") != reverse
            if self.removed:
                log.warning("this node was removed from the cluster; it no longer takes part")
        return bool(SyncObj._SyncObj__doChangeCluster(self, request, reverse))

    def _SyncObj__applyLogEntries(self) -> bool:  # noqa: N802
        # pysyncobj's leader applies what just committed, then tells the followers the
        # new commit index: they would apply only after it. Telling them first lets
        # them apply alongside the leader (a follower's client waits for both in turn
        # otherwise: the whole log backlog, twice).
        self.count_self_durably()  # pysyncobj counted every entry of ours: only synced ones count
        # pysyncobj (appendEntriesUseBatch off) then sent a second round after the apply,
        # with the same commit index and no new entry: not any more (fewer messages and
        # answers per applied entry; heartbeats still go every --heartbeat-period).
        if self._isLeader() and self._SyncObj__raftCommitIndex > self._commit_sent:
            self._commit_sent = self._SyncObj__raftCommitIndex
            self._SyncObj__sendAppendEntries()
        super()._SyncObj__applyLogEntries()  # in slices: apply_budget.py
        return False  # pysyncobj's "send a round now": the round above went already

    def _checkCommandsToApply(self) -> None:  # noqa: N802
        if self.handover.holds(self._isLeader()):
            return  # handing leadership over: new commands wait until it is done
        self.high_forwarder.flush(self, lambda c, cb: self._append(c, cb, None))
        if self._isLeader():
            backlog = unapplied_bytes(self._SyncObj__raftLog, self._SyncObj__raftLastApplied)
            self.log_gate.release(backlog, self._append)
        elif self.log_gate.held:
            self.log_gate.drain(self._append)
        # pysyncobj (appendEntriesUseBatch off) sends a round of appends after each command it
        # logs: the leader finds 2-4 queued commands at a time under load, and each follower
        # got (and acknowledged) one message per command. One round after all of them now.
        self._appends_held = False
        try:
            super()._checkCommandsToApply()
        finally:
            held, self._appends_held = self._appends_held, None
            if held:
                self._SyncObj__sendAppendEntries()

    def _SyncObj__sendAppendEntries(self) -> None:  # noqa: N802
        if self._appends_held is not None:  # logging queued commands: one round at the end
            self._appends_held = True
            return
        SyncObj._SyncObj__sendAppendEntries(self)  # type: ignore[attr-defined]

    def destroy_synchronous(self) -> None:
        super().destroy_synchronous()
        self.snapshots.stop()  # a dump still being written is killed and reaped

    def _load_dump(self, path: str) -> tuple[Any, ...]:
        if self.journal.fsync:  # pysyncobj renames a dump received from the leader into place unsynced
            sync_file(path)  # it must be on disk before the journal is cut to it and the leader is answered
        raft_data = self.snapshots.deserialize(path)  # codec.loads freezes what it decoded
        self.heard_from_leader()  # decoding a big dump took seconds in which nothing was polled
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
        elif self.leader_answers:
            self.leader_answers.clear()  # the followers' own applies answer them
        self.read_index.on_tick()
        self._pace_compaction()

    def _pace_compaction(self) -> None:
        """pysyncobj's entry threshold for this tick: compaction.py."""
        self._SyncObj__conf.logCompactionMinEntries = self.compaction.min_entries(
            self.journal.size, self.snapshots.info.size, self._isLeader())

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
        # timers (lock expiries) go in the high lane: past the bulk work the log gate holds
        self.apply_entry(encode(entry), callback=HighCallback(self._tick_done, client=False))

    def _tick_done(self, _result: object, _error: int) -> None:
        self._tick_sent_at = 0.0
