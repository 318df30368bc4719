"""A node's storage side: which snapshot store, recovery at start, publishing, the projection.

`RaftNode` builds one `NodeStorage` from its settings and calls, in order:

    storage.recover()            before the Raft member exists: an empty data dir + --redis
                                 gets the newest valid snapshot of the cluster
    storage.notify_dump(index)   from the snapshot serializer (Raft thread) after each dump
    storage.attach(member)       once the member runs: publisher thread, projection thread
    storage.stop()

Nothing here runs on the Raft thread longer than setting an event or putting a
tuple on a queue; Redis is only talked to from the two background threads (and
once at start, for recovery).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from cluster.config import Settings

from .base import SnapshotStore
from .file import FileStore, node_store_dir
from .projection import Projection, ProjectionSource, ProjectionStatus
from .publisher import PublishStatus, SnapshotPublisher
from .recovery import describe, recover_if_empty
from .snapshot_file import SnapshotInfo

log = logging.getLogger("fsmcluster.storage")


def open_store(settings: Settings) -> SnapshotStore:
    if settings.redis:
        from .redis import RedisStore

        return RedisStore.from_url(settings.redis, settings.cluster_id)
    return FileStore(node_store_dir(settings.data_dir), settings.cluster_id)


class NodeStorage:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = open_store(settings)
        self.publisher = SnapshotPublisher(
            self.store, settings.snapshot_file, node=settings.raft, keep=settings.snapshot_keep
        )
        self.projection: Projection | None = None
        self.restored: str | None = None  # what recovery restored, for the log and status

    def recover(self) -> None:
        """Restore from the store when this node's data dir is empty (only with --redis:
        the file store lives in the data dir, so it is lost with it)."""
        if not self.settings.redis:
            return
        started = time.monotonic()
        meta = recover_if_empty(self.store, self.settings.data_dir)
        if meta is not None:
            self.restored = describe(meta, self.store.kind)
            log.info("data dir %s was empty: restored the %s in %.2fs; catching up from the leader",
                     self.settings.data_dir, self.restored, time.monotonic() - started)

    def notify_dump(self, index: int | None) -> None:
        self.publisher.notify(index)

    def attach(self, member: ProjectionSource, is_leader: Callable[[], bool],
               listeners: list[Callable[[Any, Any], None]]) -> None:
        self.publisher.start()
        if self.settings.redis and self.settings.redis_projection:
            from .redis import connect

            self.projection = Projection(
                connect(self.settings.redis), self.settings.cluster_id, member, is_leader,
                node=self.settings.raft,
            )
            projection = self.projection
            listeners.append(lambda entry, outcome: projection.on_applied(entry.index, outcome.events))
            projection.start()
            log.info("Redis projection on (eventually consistent read model under %s)", projection.ns)

    def stop(self) -> None:
        if self.projection is not None:
            self.projection.stop()
        self.publisher.stop()

    @property
    def snapshot_status(self) -> PublishStatus:
        return self.publisher.status

    @property
    def projection_status(self) -> ProjectionStatus:
        return self.projection.status if self.projection is not None else ProjectionStatus()

    def snapshot_info(self, local: SnapshotInfo) -> SnapshotInfo:
        """What `/v1/cluster` shows: the store's newest snapshot, or why the last attempt failed."""
        if not local.ok:  # the dump itself failed: nothing to publish
            return dataclasses.replace(local, store=self.store.kind)
        s = self.publisher.status
        return SnapshotInfo(store=s.store, last_index=s.last_index, last_at_ms=s.last_at_ms, ok=s.ok,
                            error=s.error, size=s.size)

    def wait_stored(self, index: int, timeout: float) -> PublishStatus:
        return self.publisher.wait_for(index, timeout)
