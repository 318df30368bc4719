"""Sync before acknowledging: where the Raft member calls `DurableJournal.sync` (journal.py).

Raft counts an entry towards a commit once a majority *holds* it; after a
power cut only what was synced is held. pysyncobj 0.3.17 never syncs, so
`DurableMember` (a mixin of `RaftMember`) places one group sync at each point
where an appended entry could otherwise be counted or acknowledged:

- **a follower's answer to an append** (`next_node_idx`): while the journal
  has unsynced writes, answers are held, in order, and sent right after the
  next sync. Every append the Raft thread handled in one poll is covered by one
  fdatasync.
- **the leader counting itself**: pysyncobj counts the leader for every entry
  in its log when it computes the commit index, at the start of its tick. The
  journal is synced first thing in each tick, and again just before the tick
  waits for the network (so entries proposed in this tick are synced while the
  followers write theirs). The only append between the first sync and the
  commit computation is the no-op of a node that wins an election inside the
  tick (a one-member cluster); that is synced as it is written.

Term and vote are synced by the journal itself before pysyncobj sends anything
that reflects them. With `--fsync off` the journal is never dirty: nothing is
held and nothing waits. The Raft thread waits for at most one sync at a time.
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

    _held: list[tuple[Any, dict[str, Any]]]  # set before SyncObj.__init__ (RaftMember)

    @property
    def journal(self) -> DurableJournal:
        return self._SyncObj__raftLog  # type: ignore[attr-defined,no-any-return]

    def sync_journal(self) -> None:
        """Sync what was appended since the last sync, then send the answers that waited for it."""
        self.journal.sync()
        held, self._held = self._held, []
        for node, kwargs in held:
            super()._SyncObj__sendNextNodeIdx(node, **kwargs)  # type: ignore[misc]

    def _onTick(self, timeToWait: float = 0.0) -> None:  # noqa: N802, N803 - pysyncobj's names
        self.sync_journal()  # before pysyncobj computes the commit index, counting itself
        super()._onTick(timeToWait)  # type: ignore[misc]

    def _SyncObj__sendNextNodeIdx(  # noqa: N802, N803
        self, node: Any, reset: bool = False, nextNodeIdx: int | None = None, success: bool = False
    ) -> None:
        if nextNodeIdx is None:  # what pysyncobj would compute now, not at send time
            nextNodeIdx = self.journal[-1][1] + 1
        kwargs = {"reset": reset, "nextNodeIdx": nextNodeIdx, "success": success}
        if self.journal.dirty or self._held:
            self._held.append((node, kwargs))  # in order: one sent now could overtake them
            return
        super()._SyncObj__sendNextNodeIdx(node, **kwargs)  # type: ignore[misc]

    def _SyncObj__onBecomeLeader(self) -> None:  # noqa: N802
        super()._SyncObj__onBecomeLeader()  # type: ignore[misc]
        self.sync_journal()  # its no-op, before a one-member cluster counts it in this tick
