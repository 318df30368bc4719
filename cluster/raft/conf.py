"""pysyncobj's settings for a node (the table in DESIGN.md, "pysyncobj settings", says why each)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pysyncobj import SyncObjConf

from cluster.config import Settings
from cluster.storage.snapshot_file import SnapshotHooks


def build_conf(
    settings: Settings, hooks: SnapshotHooks, deserializer: Callable[[str], tuple[Any, ...]] | None = None,
    serializer: Callable[[str, Any], None] | None = None,
) -> SyncObjConf:
    return SyncObjConf(
        # send each entry at once instead of on the next 100 ms round: ~0.3 ms commits
        appendEntriesUseBatch=False,
        appendEntriesPeriod=settings.heartbeat_period,
        autoTickPeriod=settings.auto_tick_period,
        raftMinTimeout=settings.raft_min_timeout,
        raftMaxTimeout=settings.raft_max_timeout,
        connectionTimeout=max(3.5, settings.raft_max_timeout),
        connectionRetryTime=1.0,
        leaderFallbackTimeout=settings.leader_fallback_timeout,
        commandsWaitLeader=True,
        dynamicMembershipChange=True,
        journalFile=str(settings.journal_file),
        fullDumpFile=str(settings.snapshot_file),
        serializer=serializer or hooks.serialize,
        deserializer=deserializer or hooks.deserialize,
        serializeChecker=getattr(hooks, "check", None),  # a dump written off the Raft thread
        logCompactionMinEntries=settings.log_compaction_entries,
        logCompactionMinTime=settings.log_compaction_seconds,
        password=settings.cluster_secret,
        bindAddress=settings.raft_bind,  # None: bind to the advertised --raft address
    )
