"""Apply committed entries in slices of time, so a long backlog cannot silence the Raft thread.

pysyncobj 0.3.17 applies *every* committed entry in one tick (`__applyLogEntries`)
before the leader sends its append-entries round and before any node polls its
sockets. At a million objects on a busy box one bulk-load entry (a batch of
1,000 creates) takes a few hundred milliseconds to apply; a tick that finds a
few of them committed (group commit, forwarded batches, a restart replaying its
journal) ran for longer than the election timeout, and the followers, hearing
nothing, elected a new leader. A follower doing the same answered nothing and
the leader, after `--leader-fallback-timeout`, stepped down.

`ApplyBudget` (a mixin of `RaftMember`, ahead of `SyncObj`) replaces that loop
by the same one with a time budget: it applies entries one by one, in order,
exactly as pysyncobj does (subscribers called back with the outcome when their
term matches, else DISCARDED; `raftLastApplied` advanced after each), and stops
once a heartbeat period (`--heartbeat-period`) has passed. The tick then goes
on as usual: the leader's heartbeat goes out when it is due (the new commit
index went before the apply, member.py), callbacks run (the journal sync and the
answers it held), sockets are polled, and the next tick, which does not wait for
the network while entries are left, applies the rest. So a
node is back in its poll loop at least every heartbeat period plus one entry.
What one Raft entry may cost is bounded by group commit's cap on operations
(group_commit.py) and by the engine's step budget per entry.

A slice still keeps the leader silent for up to a heartbeat period plus one
entry, and the followers apply the same entries at the same time, so more
rules keep a live leader in place while everybody is busy:

- (`RaftMember._SyncObj__applyLogEntries`, member.py: the leader sends its
  round with a new commit index *before* applying, so the followers hear from it
  right before its silence and apply alongside it.)
- **A follower that was busy applying restarts its election timer** afterwards
  (`heard_from_leader`): the leader has been applying the same entries.
- **The leader sends its round before log compaction forks its dump process**
  (`announce_then`, around the dump serializer: the fork copies the node's page
  tables on the Raft thread).
- **A follower reads its sockets before standing for election.** pysyncobj's
  tick checks the election timer first and polls last, so a follower that was
  kept from running (applying, loading a dump, a GC pause, a starved CPU) found
  its timer expired and stood for election although the leader's heartbeats
  were waiting unread in its socket; the election deposed a live leader. Now
  such a tick polls (without waiting) first, and those heartbeats count.

Each rule only delays a follower's candidacy, never makes a node leader, so
safety is untouched; a leader that really died is replaced at most one
election timeout later than otherwise.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pysyncobj import FAIL_REASON
from pysyncobj.monotonic import monotonic as raft_clock  # pysyncobj's timers use this clock
from pysyncobj.syncobj import SyncObjExceptionWrongVer

log = logging.getLogger("fsmcluster.raft")

FOLLOWER = 0  # pysyncobj's _RAFT_STATE.FOLLOWER


class ApplyBudget:
    """Mixin for a `SyncObj` subclass: see the module docstring."""

    _apply_backlog = False  # entries were left for the next tick

    def _onTick(self, timeToWait: float = 0.0) -> None:  # noqa: N802, N803 - pysyncobj's names
        if (self._SyncObj__raftState == FOLLOWER  # type: ignore[attr-defined]
                and raft_clock() > self._SyncObj__raftElectionDeadline):  # type: ignore[attr-defined]
            # the tick stands for election before it polls: first read what already arrived
            self._poller.poll(0)  # type: ignore[attr-defined]
        # with entries left to apply, poll the sockets but do not wait for them
        super()._onTick(0.0 if self._apply_backlog else timeToWait)  # type: ignore[misc]

    def _SyncObj__applyLogEntries(self) -> bool:  # noqa: N802
        """Apply committed entries for at most one heartbeat period; pysyncobj's answer: send a round?"""
        first = self._SyncObj__raftLastApplied + 1  # type: ignore[attr-defined]
        count = self._SyncObj__raftCommitIndex - first + 1  # type: ignore[attr-defined]
        self._apply_backlog = False
        if count <= 0:
            return False
        entries = self._SyncObj__getEntries(first, count)  # type: ignore[attr-defined]
        leader = self._isLeader()  # type: ignore[attr-defined]
        period = self._SyncObj__conf.appendEntriesPeriod  # type: ignore[attr-defined]
        started = time.monotonic()
        for done, (command, index, term) in enumerate(entries, 1):
            self._apply_one(command, index, term)
            if done < len(entries) and time.monotonic() - started >= period:
                self._apply_backlog = True
                break
        if not leader and time.monotonic() - started >= period:
            self.heard_from_leader()
        return not self._SyncObj__conf.appendEntriesUseBatch  # type: ignore[attr-defined]

    def announce_then(self, work: Callable[..., None]) -> Callable[..., None]:
        """`work` run on the Raft thread after the leader's round (log compaction's serializer).

        Forking the dump's process stops the Raft thread for as long as the
        kernel copies the node's page tables (milliseconds; more for a large
        state on a busy box): the followers' timers then start just before that
        silence instead of up to a heartbeat period earlier.
        """

        def announced(*args: Any) -> None:
            if self._isLeader():  # type: ignore[attr-defined]
                self._SyncObj__sendAppendEntries()  # type: ignore[attr-defined]
            work(*args)

        return announced

    def heard_from_leader(self) -> None:
        """Restart the election timer, as a message from the leader does.

        For a node that has just spent seconds on the Raft thread without polling
        (loading a dump received from the leader, ~5 s at a million objects): the
        leader's heartbeats of meanwhile are still unread in the socket, and the
        next tick, which checks the timer before it polls, would start an election
        and depose a live leader. Only delays this node's own candidacy.
        """
        timeout = self._SyncObj__generateRaftTimeout()  # type: ignore[attr-defined]
        self._SyncObj__raftElectionDeadline = raft_clock() + timeout

    def _apply_one(self, command: bytes, index: int, term: int) -> Any:
        """Applies one entry as pysyncobj does; returns what the replicated method returned."""
        waiting = self._SyncObj__commandsWaitingCommit.pop(index, [])  # type: ignore[attr-defined]
        try:
            result: Any = self._SyncObj__doApplyCommand(command)  # type: ignore[attr-defined]
        except SyncObjExceptionWrongVer as exc:  # as pysyncobj: logged, the entry is skipped
            log.error("entry %d needs pysyncobj code version %d", index, exc.ver)
            return None
        for subscribed_term, callback in waiting:
            if subscribed_term == term:
                callback(result, FAIL_REASON.SUCCESS)
            else:
                callback(None, FAIL_REASON.DISCARDED)
        self._SyncObj__raftLastApplied += 1  # type: ignore[attr-defined]
        return result
