"""Sync before acknowledging, without waiting on the Raft thread: where `DurableJournal` (journal.py) syncs.

Raft counts an entry towards a commit once a majority *holds* it; after a
power cut only what was synced is held. pysyncobj 0.3.17 never syncs, so
`DurableMember` (a mixin of `RaftMember`) bounds each place where an appended
entry could be counted or acknowledged by the journal's `durable_index`, and
keeps the journal's sync thread busy whenever something is unsynced:

- **One sync at a time, never on the critical path of a slow disk.** At the
  start of each tick and again just before the tick waits for the network, the
  member collects a finished sync and starts the next one (everything written
  since the last started). On a slow disk (journal.py: syncs over 2 ms lately)
  the sync runs on the journal's sync thread (Raft dissertation §10.2.1): the
  Raft thread meanwhile sends, receives and applies, and the sync thread wakes
  it when something waits for the sync. On a fast disk the sync runs at once on
  the Raft thread: cheaper in CPU than the hand-over. Either way the leader has
  sent an entry to the followers before it syncs it, so they write in parallel.
- **A follower's answer to an append** (`next_node_idx`) that acknowledges
  entries up to index i is held until `durable_index >= i`; answers go out in
  order (one sent early could overtake a held one).
- **The leader counts itself** towards a commit only for entries up to its
  `durable_index`. pysyncobj counts the leader for every entry in its log; its
  commit index is corrected (`count_self_durably`) right after it computed it,
  before anything uses it: for an entry past `durable_index` the followers alone
  must make a majority. When the leader's own sync finishes, the next tick
  counts it.

Term and vote are synced by the journal itself, at once, before pysyncobj
sends anything that reflects them. With `--fsync off` every written entry is
durable: nothing is held and nothing waits.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pysyncobj.syncobj as syncobj_module

from .journal import DurableJournal

_factory_lock = threading.Lock()
_HOOKS = ("_onTick", "_SyncObj__sendNextNodeIdx", "_SyncObj__onBecomeLeader", "_SyncObj__onMessageReceived",
          # RaftMember's log gate and commit-index-first apply (member.py, log_gate.py)
          "_SyncObj__applyLogEntries", "_SyncObj__sendAppendEntries", "_SyncObj__callErrCallback",
          # leader stickiness and the read lease (lease.py, read_index.py)
          "_SyncObj__generateRaftTimeout", "transferLeadership",
          # apply_budget.py
          "_SyncObj__doApplyCommand", "_SyncObj__getEntries")


def check_pysyncobj() -> None:
    """Refuse to start on a pysyncobj whose internals we hook differ from 0.3.17's."""
    missing = [name for name in _HOOKS if not hasattr(syncobj_module.SyncObj, name)]
    if not hasattr(syncobj_module, "createJournal"):
        missing.append("createJournal")
    if missing:
        raise RuntimeError(f"pysyncobj has no {', '.join(missing)}: this pysyncobj is not supported")


@contextmanager
def journal_for_init(journal: DurableJournal) -> Iterator[None]:
    """While pysyncobj's `SyncObj.__init__` runs, its `createJournal` returns `journal`."""
    check_pysyncobj()
    with _factory_lock:
        original = syncobj_module.createJournal

        def create(path: str | None) -> DurableJournal:
            if path != journal.path:
                raise RuntimeError(f"pysyncobj asked for journal {path!r}, expected {journal.path!r}")
            return journal

        syncobj_module.createJournal = create
        try:
            yield
        finally:
            syncobj_module.createJournal = original


def check_adopted(member: Any, journal: DurableJournal) -> None:
    if getattr(member, "_SyncObj__raftLog", None) is not journal:
        raise RuntimeError("pysyncobj did not take our journal: this pysyncobj is not supported")


class DurableMember:
    """Mixin for a `SyncObj` subclass whose journal is a `DurableJournal`; see the module doc."""

    _held: list[tuple[int, Any, dict[str, Any]]]  # set before SyncObj.__init__ (RaftMember)
    _commit_before_tick = 0
    _commit_waits = False  # the leader's commit index waits for its own sync
    _sync_awaited = False  # read by the sync thread: wake the Raft thread when the sync ends

    @property
    def journal(self) -> DurableJournal:
        return self._SyncObj__raftLog  # type: ignore[attr-defined,no-any-return]

    def sync_journal(self) -> None:
        """Last before the tick waits: count a finished sync, start the next, arrange to be woken.

        The sync thread wakes the Raft thread only when something waits for its
        sync (an answer held, or a commit the leader's own copy holds back): a
        wake costs a whole tick, and most syncs end before anyone needs them.
        The flag goes up before the check for a sync that ended meanwhile, so
        one of the two sees the other.
        """
        journal = self.journal
        synced = self._collect_sync()
        self._sync_awaited = bool(self._held) or self._commit_waits
        if (synced and self._commit_waits) or (self._sync_awaited and journal.finished()):
            self._wake_raft()

    def _collect_sync(self) -> bool:
        """Count a finished sync, send the answers it covered, start syncing what is new (never waits)."""
        journal = self.journal
        synced = journal.collect()
        if journal.start_sync(self._sync_ended) and not journal.syncing:
            synced = True  # a fast disk: synced on this thread (journal.py)
        if synced and self._held:
            self._send_held(journal.durable_index)
        return synced

    def _sync_ended(self) -> None:  # on the sync thread
        if self._sync_awaited:
            self._wake_raft()

    def _wake_raft(self) -> None:
        self.raft_view.wake()  # type: ignore[attr-defined]  # set by RaftMember before SyncObj starts

    def _send_held(self, durable: int) -> None:
        sent = 0
        for needs, node, kwargs in self._held:
            if needs > durable:
                break
            super()._SyncObj__sendNextNodeIdx(node, **kwargs)  # type: ignore[misc]
            sent += 1
        del self._held[:sent]

    def _onTick(self, timeToWait: float = 0.0) -> None:  # noqa: N802, N803 - pysyncobj's names
        self._collect_sync()  # before pysyncobj computes the commit index
        self._commit_before_tick = self._SyncObj__raftCommitIndex  # type: ignore[attr-defined,has-type]
        super()._onTick(timeToWait)  # type: ignore[misc]

    def _SyncObj__sendNextNodeIdx(  # noqa: N802, N803
        self, node: Any, reset: bool = False, nextNodeIdx: int | None = None, success: bool = False
    ) -> None:
        if nextNodeIdx is None:  # what pysyncobj would compute now, not at send time
            nextNodeIdx = self.journal[-1][1] + 1
        kwargs = {"reset": reset, "nextNodeIdx": nextNodeIdx, "success": success}
        needs = nextNodeIdx - 1 if success else 0  # a refusal acknowledges nothing
        if self._held or needs > self.journal.durable_index:
            self._held.append((needs, node, kwargs))
            return
        super()._SyncObj__sendNextNodeIdx(node, **kwargs)  # type: ignore[misc]

    def count_self_durably(self) -> None:
        """On the leader, right after pysyncobj's commit computation: count itself only up to `durable_index`."""
        commit = self._SyncObj__raftCommitIndex  # type: ignore[attr-defined,has-type]
        durable = self.journal.durable_index
        floor = self._commit_before_tick
        if commit <= durable or commit <= floor or not self._isLeader():  # type: ignore[attr-defined]
            self._commit_waits = False
            return
        corrected = durable_commit(self.journal, floor, commit, durable,
                                   self._SyncObj__raftCurrentTerm,  # type: ignore[attr-defined]
                                   self._follower_matches())
        self._commit_waits = corrected < commit
        self._SyncObj__raftCommitIndex = corrected
        self._SyncObj__leaderCommitIndex = corrected
        self.journal.setRaftCommitIndex(corrected)

    def _follower_matches(self) -> list[int]:
        """Match indexes of the other voters (pysyncobj counts these for a commit)."""
        matches = self._SyncObj__raftMatchIndex  # type: ignore[attr-defined]
        return [matches.get(node, 0) for node in self._SyncObj__otherNodes]  # type: ignore[attr-defined]


def durable_commit(journal: DurableJournal, floor: int, commit: int, durable: int, term: int,
                   matches: list[int]) -> int:
    """The highest index in (floor, commit] a majority holds on disk, counting the leader only up to `durable`.

    Raft's rule, as pysyncobj applies it: an index commits by counting only if
    its entry is of the current term. Every index up to `commit` has a majority
    when the leader counts (pysyncobj computed that); past `durable` the
    followers' match indexes alone must make one.
    """
    voters = len(matches) + 1
    first = journal[0][1] if len(journal) else 1
    for index in range(commit, floor, -1):
        held = index <= durable or sum(1 for m in matches if m >= index) > voters / 2
        if held and index >= first and journal[index - first][2] == term:
            return index
    return floor
