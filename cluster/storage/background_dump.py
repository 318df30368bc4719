"""Log compaction that does not stall the Raft thread: encode and write the dump off it.

pysyncobj calls the serializer on its Raft thread and, for a plain serializer,
waits for it. Encoding 100,000 objects and writing ~36 MB takes over a second
on a small box: longer than the election timeout, so the followers would elect
a new leader under every large snapshot. Instead:

1. On the Raft thread, `serialize` *detaches* the state: shallow copies of its
   containers (dicts, lists; a SortedDict becomes a read-only `FrozenTable`). Records, tuples and the event dicts
   inside them are never mutated after they are made (cluster/core/DESIGN.md),
   so sharing them is safe. That costs tens of milliseconds for 100k objects.
2. A worker thread encodes the copy (`cluster.storage.snapshot_file.write_snapshot`)
   into `<dump>.bg.tmp` and fsyncs it.
3. pysyncobj asks `check()` (its `serializeChecker`) on every tick, on its
   thread; it answers SERIALIZING until the worker is done. Then, still on the
   Raft thread, it renames the new dump over the old one and answers SUCCESS
   (pysyncobj then drops the log entries the dump covers), or FAILED (the log
   is kept; it retries later).

The rename happens on the Raft thread because that thread also installs dumps
received from the leader (same file name): done there, the two cannot
interleave. If a received dump replaced the file after `serialize` began, ours
is dropped and the answer is FAILED: pysyncobj must not compact the log up to
an index that the dump on disk may not cover; it keeps the log and retries.

pysyncobj renames `<dump>.tmp` over the dump right after the serializer returns;
we leave no such file, so that rename fails harmlessly and the last good dump
stays in place until ours replaces it. What happens when the node is killed
between the rename and pysyncobj's compaction of the log: cluster/raft/journal.py.
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pysyncobj.config import SERIALIZER_STATE
from sortedcontainers import SortedDict

from cluster.core.state import ClusterState

from .file import fsync_dir
from .snapshot_file import SnapshotHooks, SnapshotInfo, _index_of, _now_ms, write_snapshot

_CONTAINERS = (dict, list, set)  # SortedDict is a dict


class FrozenTable:
    """A detached object table (a `SortedDict` of id -> record): what the encoder reads of it.

    `SortedDict.copy()` re-sorts and rebuilds every key (1.1 CPU s at a million
    objects, on the Raft thread: seconds on a busy box, and an election); reading
    the keys in order (they are kept in sorted sublists) and their records is
    ~0.25 s. Read-only: `values()`/`items()` in key order, `get`, `len`, `in`.
    """

    __slots__ = ("_ids", "_records")

    def __init__(self, table: SortedDict) -> None:
        self._ids: list[str] = list(table)
        self._records: list[Any] = list(map(table.__getitem__, self._ids))

    def values(self) -> list[Any]:
        return self._records

    def items(self) -> Iterator[tuple[str, Any]]:
        return zip(self._ids, self._records, strict=True)

    def get(self, key: str, default: Any = None) -> Any:
        i = bisect_left(self._ids, key)
        return self._records[i] if i < len(self._ids) and self._ids[i] == key else default

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)


def detach(value: Any) -> Any:
    """A copy of every mutable container in `value`; immutable leaves are shared."""
    if isinstance(value, SortedDict):
        return FrozenTable(value)  # its values are immutable records
    if isinstance(value, dict):
        if not _holds_containers(value.values()):
            return dict(value)  # the common case (records, tuples): a C-speed copy
        return {k: detach(v) for k, v in value.items()}
    if isinstance(value, list):
        if not _holds_containers(value):
            return list(value)  # e.g. the deadlines (tuples)
        return [detach(v) for v in value]
    if isinstance(value, set):
        return set(value)
    return value


def _holds_containers(values: Iterable[Any]) -> bool:
    # the distinct types, found at C speed (a million values: ~25 ms instead of ~200 ms)
    return any(issubclass(t, _CONTAINERS) for t in set(map(type, values)))


def detach_state(state: ClusterState) -> ClusterState:
    clone = copy.copy(state)
    for name, value in vars(state).items():
        setattr(clone, name, detach(value))
    return clone


class BackgroundSnapshotHooks(SnapshotHooks):
    """`SnapshotHooks` whose `serialize` returns at once; hand `check` to SyncObjConf.serializeChecker."""

    def __init__(self, *args: Any, dump_file: str | Path, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.dump_file = Path(dump_file)
        self._state = SERIALIZER_STATE.NOT_SERIALIZING
        self._written: tuple[Path, Any] | None = None  # the finished dump, not yet renamed into place
        self._replaces: tuple[int, int] | None = None  # the dump file it is meant to replace
        self._lock = threading.Lock()

    def serialize(self, tmp_path: str, raft_data: Any) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)  # see the module docstring: pysyncobj's own rename must not happen
        state = detach_state(self._get_state())
        with self._lock:
            self._state = SERIALIZER_STATE.SERIALIZING
            self._written = None
        self._replaces = _identity(self.dump_file)
        threading.Thread(target=self._write, args=(state, raft_data), name="fsm-snapshot-dump",
                         daemon=True).start()

    def check(self) -> int:
        """pysyncobj's serializeChecker; called on the Raft thread, every tick."""
        with self._lock:
            state = self._state
            if state in (SERIALIZER_STATE.SUCCESS, SERIALIZER_STATE.FAILED):
                self._state = SERIALIZER_STATE.NOT_SERIALIZING  # reported once
            written = self._written
        if state == SERIALIZER_STATE.SUCCESS and written is not None:
            return self._put_in_place(*written)
        return state

    def _write(self, state: ClusterState, raft_data: Any) -> None:
        tmp = self.dump_file.with_name(self.dump_file.name + ".bg.tmp")
        try:
            write_snapshot(tmp, state, raft_data)
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            self._failed(str(exc))
            self._finish(SERIALIZER_STATE.FAILED)
            return
        with self._lock:
            self._written = (tmp, raft_data)
            self._state = SERIALIZER_STATE.SUCCESS

    def _put_in_place(self, tmp: Path, raft_data: Any) -> int:
        if _identity(self.dump_file) != self._replaces:
            tmp.unlink(missing_ok=True)
            self._log("snapshot dropped: a dump received from the leader replaced the file meanwhile")
            return SERIALIZER_STATE.FAILED
        try:
            size = tmp.stat().st_size
            os.replace(tmp, self.dump_file)
            fsync_dir(self.dump_file.parent)  # the rename too must survive a power cut
        except OSError as exc:
            self._failed(str(exc))
            return SERIALIZER_STATE.FAILED
        self.info = SnapshotInfo(last_index=_index_of(raft_data), last_at_ms=_now_ms(), ok=True, size=size)
        self._on_written(self.info.last_index)
        return SERIALIZER_STATE.SUCCESS

    def _failed(self, error: str) -> None:
        self.info = SnapshotInfo(last_index=self.info.last_index, last_at_ms=self.info.last_at_ms,
                                 ok=False, error=error, size=self.info.size)
        self._log(f"snapshot failed: {error}")

    def _finish(self, state: int) -> None:
        with self._lock:
            self._state = state


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns
