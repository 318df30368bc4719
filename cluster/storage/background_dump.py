"""Log compaction that does not stall the Raft thread: encode and write the dump off it.

pysyncobj calls the serializer on its Raft thread and, for a plain serializer,
waits for it. Encoding 100,000 objects and writing ~36 MB takes over a second
on a small box: longer than the election timeout, so the followers would elect
a new leader under every large snapshot. Instead:

1. On the Raft thread, `serialize` *detaches* the state: shallow copies of its
   containers (dicts, SortedDicts, lists). Records, tuples and the event dicts
   inside them are never mutated after they are made (cluster/core/DESIGN.md),
   so sharing them is safe. That costs tens of milliseconds for 100k objects.
2. A worker thread encodes the copy (`cluster.raft.snapshot.write_snapshot`),
   fsyncs it under `<dump>.bg.tmp` and renames it over the dump file.
3. pysyncobj asks `check()` (its `serializeChecker`) on every tick; it answers
   SERIALIZING until the worker is done, then SUCCESS (pysyncobj then drops the
   log entries the dump covers) or FAILED (the log is kept; it retries later).

pysyncobj renames `<dump>.tmp` over the dump right after the serializer returns;
we leave no such file, so that rename fails harmlessly and the last good dump
stays in place until the worker replaces it. If a dump received from the leader
replaced the file meanwhile, the worker's older dump is dropped, not renamed
over it.
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
from pathlib import Path
from typing import Any

from pysyncobj.config import SERIALIZER_STATE
from sortedcontainers import SortedDict

from cluster.core.state import ClusterState
from cluster.raft.snapshot import SnapshotHooks, SnapshotInfo, _index_of, _now_ms, write_snapshot

_CONTAINERS = (dict, list, set)  # SortedDict is a dict


def detach(value: Any) -> Any:
    """A copy of every mutable container in `value`; immutable leaves are shared."""
    if isinstance(value, SortedDict):
        return value.copy()  # its values are immutable records
    if isinstance(value, dict):
        if not any(isinstance(v, _CONTAINERS) for v in value.values()):
            return dict(value)  # the common case (records, tuples): a C-speed copy
        return {k: detach(v) for k, v in value.items()}
    if isinstance(value, list):
        return [detach(v) for v in value]
    if isinstance(value, set):
        return set(value)
    return value


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
        self._lock = threading.Lock()

    def serialize(self, tmp_path: str, raft_data: Any) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)  # see the module docstring: pysyncobj's own rename must not happen
        state = detach_state(self._get_state())
        with self._lock:
            self._state = SERIALIZER_STATE.SERIALIZING
        threading.Thread(target=self._write, args=(state, raft_data), name="fsm-snapshot-dump",
                         daemon=True).start()

    def check(self) -> int:
        with self._lock:
            state = self._state
            if state in (SERIALIZER_STATE.SUCCESS, SERIALIZER_STATE.FAILED):
                self._state = SERIALIZER_STATE.NOT_SERIALIZING  # reported once
            return state

    def _write(self, state: ClusterState, raft_data: Any) -> None:
        tmp = self.dump_file.with_name(self.dump_file.name + ".bg.tmp")
        before = _identity(self.dump_file)
        try:
            write_snapshot(tmp, state, raft_data)
            if _identity(self.dump_file) != before:
                tmp.unlink(missing_ok=True)
                raise RuntimeError("a newer dump (received from the leader) replaced the file meanwhile")
            os.replace(tmp, self.dump_file)
        except Exception as exc:
            self.info = SnapshotInfo(last_index=self.info.last_index, last_at_ms=self.info.last_at_ms,
                                     ok=False, error=str(exc))
            self._log(f"snapshot failed: {exc}")
            self._finish(SERIALIZER_STATE.FAILED)
            return
        self.info = SnapshotInfo(last_index=_index_of(raft_data), last_at_ms=_now_ms(), ok=True)
        self._on_written(self.info.last_index)
        self._finish(SERIALIZER_STATE.SUCCESS)

    def _finish(self, state: int) -> None:
        with self._lock:
            self._state = state


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns
