"""The snapshot file pysyncobj writes on log compaction and sends to lagging followers.

pysyncobj calls `serializer(tmp_path, raft_data)` in its own thread when it
compacts the log, and `deserializer(path)` when it starts (or receives a
snapshot from the leader). `raft_data` is pysyncobj's own bookkeeping (the last
two applied log entries and the cluster membership); the cluster state next to
it is encoded by `cluster.core.codec`, so the file format does not depend on
Python object layout:

    b"FSMSNAP2" | u64 last index | u64 last term | u64 length of state | state bytes (codec.dumps)
        | pickle(raft_data)

The leader streams the file as-is to a follower that is too far behind, so the
file must be self-contained. The index and term of the last entry it covers
come first so that a follower can tell from the first chunk whether it already
holds that entry (cluster/raft/log_guard.py). Version 1 files (b"FSMSNAP1", no
index and term in front) are still read.
"""

from __future__ import annotations

import os
import pickle
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.core import codec
from cluster.core.state import ClusterState
from cluster.errors import SnapshotError

MAGIC = b"FSMSNAP2"
MAGIC_V1 = b"FSMSNAP1"
_HEAD = struct.Struct("<8sQQQ")  # magic, last index, last term, length of state
_HEAD_V1 = struct.Struct("<8sQ")  # magic, length of state


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """What `/v1/cluster` reports; replaced whole after every attempt."""

    store: str = "file"
    last_index: int | None = None
    last_at_ms: int | None = None
    ok: bool = True
    error: str | None = None
    size: int | None = None  # bytes


def write_snapshot(path: str | Path, state: ClusterState, raft_data: Any) -> None:
    """Write and fsync the file; the state is encoded part by part as it is written,
    so the length in the header is filled in once the last part is out."""
    _command, index, term = raft_data[0]
    with open(path, "wb") as f:
        f.write(_HEAD.pack(MAGIC, index, term, 0))
        size = 0
        for part in codec.dump_parts(state):
            f.write(part)
            size += len(part)
        f.write(pickle.dumps(raft_data, protocol=pickle.HIGHEST_PROTOCOL))
        f.seek(0)
        f.write(_HEAD.pack(MAGIC, index, term, size))
        f.flush()
        os.fsync(f.fileno())


def read_snapshot(path: str | Path) -> tuple[ClusterState, Any]:
    try:
        with open(path, "rb") as f:
            blob = f.read()
        state_blob, raft_data = split_snapshot(blob)
        return codec.loads(state_blob), raft_data
    except (OSError, codec.CorruptState) as exc:
        raise SnapshotError(f"cannot read snapshot {path}: {exc}") from exc
    except SnapshotError as exc:
        raise SnapshotError(f"cannot read snapshot {path}: {exc}") from exc


def split_snapshot(blob: bytes) -> tuple[bytes, Any]:
    """The encoded state and pysyncobj's raft_data of a snapshot file's bytes (version 1 or 2)."""
    try:
        if blob.startswith(MAGIC):
            _magic, _index, _term, size = _HEAD.unpack_from(blob)
            offset = _HEAD.size
        elif blob.startswith(MAGIC_V1):
            _magic, size = _HEAD_V1.unpack_from(blob)
            offset = _HEAD_V1.size
        else:
            raise SnapshotError("not an fsmcluster snapshot (bad magic)")
        return blob[offset : offset + size], pickle.loads(blob[offset + size :])
    except (struct.error, pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise SnapshotError(f"truncated or corrupt snapshot: {exc}") from exc


def snapshot_position(head: bytes) -> tuple[int, int] | None:
    """(index, term) of the last entry a version 2 snapshot covers, from its first bytes; else None."""
    if len(head) < _HEAD.size or not head.startswith(MAGIC):
        return None
    _magic, index, term, _size = _HEAD.unpack_from(head)
    return int(index), int(term)


class SnapshotHooks:
    """The serializer/deserializer pair handed to SyncObjConf, bound to one node's state.

    `get_state` and `set_state` are called on pysyncobj's thread, which is also
    the only thread that applies entries, so the state is not changing under us.
    """

    def __init__(
        self,
        get_state: Callable[[], ClusterState],
        set_state: Callable[[ClusterState], None],
        on_log: Callable[[str], None] = lambda message: None,
        on_written: Callable[[int | None], None] = lambda index: None,
    ) -> None:
        self._get_state = get_state
        self._set_state = set_state
        self._log = on_log
        self._on_written = on_written  # e.g. copy the dump to the snapshot store (must not block)
        self.info = SnapshotInfo()

    def serialize(self, tmp_path: str, raft_data: Any) -> None:
        try:
            write_snapshot(tmp_path, self._get_state(), raft_data)
        except Exception as exc:
            self._failed(str(exc))
            raise
        self.info = SnapshotInfo(last_index=_index_of(raft_data), last_at_ms=_now_ms(), ok=True,
                                 size=os.path.getsize(tmp_path))
        self._on_written(self.info.last_index)

    def _failed(self, error: str) -> None:
        """A failed attempt: the last good dump's index, time and size stay; the error is shown."""
        self.info = SnapshotInfo(last_index=self.info.last_index, last_at_ms=self.info.last_at_ms,
                                 ok=False, error=error, size=self.info.size)
        self._log(f"snapshot failed: {error}")

    def deserialize(self, path: str) -> tuple[Any, ...]:
        state, raft_data = read_snapshot(path)
        self._set_state(state)
        self.info = SnapshotInfo(last_index=_index_of(raft_data), last_at_ms=_now_ms(), ok=True,
                                 size=os.path.getsize(path))
        self._log(f"loaded snapshot {path} at index {self.info.last_index}")
        return tuple(raft_data)


def _index_of(raft_data: Any) -> int | None:
    # raft_data = (last applied entry, the entry before it, cluster); an entry is (command, idx, term)
    try:
        return int(raft_data[0][1])
    except (TypeError, IndexError, ValueError):
        return None


def _now_ms() -> int:
    return int(time.time() * 1000)
