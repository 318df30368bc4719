"""Putting a stored snapshot back where pysyncobj loads its full dump.

Used by a node starting with a lost data dir (`--redis`: newest valid snapshot of
its cluster) and by `fsmcluster snapshot restore`. The payload is the exact file
pysyncobj's serializer wrote, so restoring is an atomic write of those bytes to
`<data-dir>/raft.snapshot`; pysyncobj loads it on its first tick and the leader
then sends the entries after the snapshot's index (or a newer snapshot).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from cluster.core.records import iso_ms

from .base import SnapshotMeta, SnapshotStore, StoreUnavailable, latest_valid

log = logging.getLogger("fsmcluster.storage")

SNAPSHOT_FILE = "raft.snapshot"
JOURNAL_FILE = "raft.journal"


def data_dir_is_empty(data_dir: Path) -> bool:
    """True when the node has neither a journal nor a snapshot: nothing to recover from locally."""
    return not (data_dir / JOURNAL_FILE).exists() and not (data_dir / SNAPSHOT_FILE).exists()


def write_snapshot_file(data_dir: Path, payload: bytes) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / SNAPSHOT_FILE
    fd, tmp = tempfile.mkstemp(prefix=".restore-", dir=data_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def restore_latest(store: SnapshotStore, data_dir: Path) -> SnapshotMeta | None:
    """Write the newest valid snapshot of the store into an empty data dir; None if there is none."""
    found = latest_valid(store)
    if found is None:
        log.info("no valid %s snapshot for cluster %r: starting empty, catching up from the leader",
                    store.kind, store.cluster_id)
        return None
    meta, payload = found
    write_snapshot_file(data_dir, payload)
    log.info("restored %s", describe(meta, store.kind))
    return meta


def recover_if_empty(store: SnapshotStore, data_dir: Path) -> SnapshotMeta | None:
    """At node start: restore from the store only when the data dir holds nothing.

    A store that cannot be reached is logged, not fatal: the node then catches up
    from the leader the slow way (the leader streams its own snapshot).
    """
    if not data_dir_is_empty(data_dir):
        return None
    try:
        return restore_latest(store, data_dir)
    except StoreUnavailable as exc:
        log.error("data dir %s is empty and the %s store is unreachable (%s): starting empty",
                  data_dir, store.kind, exc)
        return None


def describe(meta: SnapshotMeta, kind: str = "") -> str:
    where = f"{kind} " if kind else ""
    return (f"{where}snapshot of cluster {meta.cluster_id!r} at Raft index {meta.index} "
            f"(term {meta.term}, taken by {meta.node} at {iso_ms(meta.created_at_ms)}, "
            f"{meta.size} bytes)")


def summarize_payload(payload: bytes) -> dict[str, Any]:
    """Decode a payload (as pysyncobj would) and count what is in it."""
    from .snapshot_file import read_snapshot

    with tempfile.NamedTemporaryFile(prefix="fsm-inspect-") as f:
        f.write(payload)
        f.flush()
        state, raft_data = read_snapshot(f.name)
    members = sorted(str(getattr(n, "id", n)) for n in raft_data[2]) if len(raft_data) > 2 else []
    return {
        "machines": len(state.machines_by_name),
        "objects": state.object_count(),
        "last_index": state.last_index,
        "clock": iso_ms(state.clock_ms),
        "members": members,
    }
