"""Log compaction that does not stall the node: a forked child writes the dump.

pysyncobj calls the serializer on its Raft thread and, for a plain serializer,
waits for it. Encoding 100,000 objects and writing ~36 MB takes over a second
on a small box: longer than the election timeout, so the followers would elect
a new leader under every large snapshot. Instead:

1. On the Raft thread, `serialize` forks (`dump_child.py`): the child holds the
   state exactly as of the last applied entry, copy on write, without a copy
   being made. The fork stops the Raft thread while the kernel copies the
   node's page tables: milliseconds, 32-69 ms at a million objects.
2. The child encodes the state (`cluster.storage.snapshot_file.write_snapshot`)
   into `<dump>.bg.tmp`, fsyncs it and exits; the node's threads keep the GIL.
3. pysyncobj asks `check()` (its `serializeChecker`) on every tick, on its
   thread; it answers SERIALIZING until the child has exited. Then, still on the
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
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

from pysyncobj.config import SERIALIZER_STATE

from .dump_child import DumpChild
from .file import fsync_dir
from .snapshot_file import SnapshotHooks, SnapshotInfo, _index_of, _now_ms, write_snapshot


class BackgroundSnapshotHooks(SnapshotHooks):
    """`SnapshotHooks` whose `serialize` returns at once; hand `check` to SyncObjConf.serializeChecker."""

    def __init__(self, *args: Any, dump_file: str | Path, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.dump_file = Path(dump_file)
        self._tmp = self.dump_file.with_name(self.dump_file.name + ".bg.tmp")
        self._child: DumpChild | None = None
        self._raft_data: Any = None  # what the running child writes beside the state
        self._replaces: tuple[int, int] | None = None  # the dump file it is meant to replace
        self._fork_failed: str | None = None  # reported by the next check()

    def serialize(self, tmp_path: str, raft_data: Any) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)  # see the module docstring: pysyncobj's own rename must not happen
        self.stop()  # pysyncobj starts no second dump while one runs; a leftover child is stale
        self._replaces = _identity(self.dump_file)
        self._raft_data = raft_data
        began = time.perf_counter()
        try:
            self._child = DumpChild.start(partial(write_snapshot, self._tmp, self._get_state(), raft_data))
        except OSError as exc:  # e.g. ENOMEM: no room to fork
            self._fork_failed = f"cannot start the dump process: {exc}"
            return
        # what the fork cost the Raft thread (Redis reports it as latest_fork_usec)
        self._log(f"snapshot at index {_index_of(raft_data)}: dump process {self._child.pid} started "
                  f"in {(time.perf_counter() - began) * 1000:.1f} ms")

    def check(self) -> int:
        """pysyncobj's serializeChecker; called on the Raft thread, every tick."""
        if self._fork_failed is not None:
            self._failed(self._fork_failed)
            self._fork_failed = None
            return SERIALIZER_STATE.FAILED
        child = self._child
        if child is None:
            return SERIALIZER_STATE.NOT_SERIALIZING
        outcome = child.poll()
        if outcome is None:
            return SERIALIZER_STATE.SERIALIZING
        self._child = None  # reported once
        if outcome:
            self._tmp.unlink(missing_ok=True)
            self._failed(outcome)
            return SERIALIZER_STATE.FAILED
        return self._put_in_place(self._tmp, self._raft_data)

    def writing(self) -> bool:
        """A dump process is still running (`check()` reports it once it has exited)."""
        return self._child is not None and self._child.poll() is None

    def stop(self) -> None:
        """Kill a dump still being written (the node is stopping); its file is left unused."""
        if self._child is not None:
            self._child.stop()
            self._child = None

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


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns
