"""The Raft log on disk: appends synced in groups, compaction a kill cannot tear, agreement with the dump.

pysyncobj 0.3.17 keeps its log in an mmap'd file that it never flushes: an
entry survives a `kill -9` (the page cache has it) but not a power cut. Our
`DurableJournal` replaces it (pysyncobj builds it through `createJournal`, see
member.py) and is plain file I/O:

- **Appends** are `os.write` at the end of the file and are *not* synced one by
  one. `start_sync()` makes one `fdatasync` cover everything written so far
  (group sync). On a slow disk (syncs over 2 ms lately) it hands the sync to the
  journal's sync thread and returns at once (pipelined: the Raft thread goes on
  sending, receiving and applying while the disk works) and `collect()` takes
  its result; on a fast one it syncs at once, which costs less CPU.
  `durable_index` is the last index a finished sync covered. The Raft member counts its own entries towards a commit, and
  answers an append, only up to `durable_index` (durability.py). One sync is in
  flight at a time; `sync()` waits for it and syncs the rest. With
  `fsync=False` (`--fsync off`) nothing is synced, as before, and every entry
  counts as durable once written.
- **Records** are `<len, crc32, index, term>` + the command. At start the file
  is read up to the first record that is short or fails its checksum (the tail
  a power cut tore: never synced, so never acknowledged) and cut there.
- **Truncation** (a conflict, `deleteEntriesFrom`) is an `ftruncate`, synced
  with the appends that follow it. It lowers `durable_index` (and the target of
  a sync in flight) to the entry before the cut: the entries written there next
  are new, and only a sync started after them covers them.
- **Compaction** (`deleteEntriesTo`, after a snapshot) waits for a sync in
  flight, writes the kept entries to a new file, syncs it and renames it over
  the old one (pysyncobj's own rewrites the file in place, and a kill in
  between left only a prefix). The old file and the dropped entries are let
  go of by the release thread (`_release`): both took the Raft thread tens of
  milliseconds for a large log.
- **At start** the file is synced once: after a `kill -9` its tail may still be
  only in the page cache, and a restarted member must not count it as held.
- **A failed sync** (or a failed store of term and vote) stops the node: see `_stop`.
- **Term, vote and commit index** go to `<journal>.meta` (pysyncobj's format):
  written to a temporary file, synced, renamed, the directory synced. Term and
  vote are stored before pysyncobj acts on them (it calls `setCurrentTerm`
  before it sends a vote or a request for votes).

A journal written by pysyncobj's `FileJournal` (header `PYSYNCOBJ`) is
converted at start. `align_with_dump` handles a kill between the dump's rename
and the compaction (see its doc).
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from pysyncobj.journal import FileJournal, Journal
from pysyncobj.pickle import dumps, loads, to_bytes

from .sync_stats import SyncStats

log = logging.getLogger("fsmcluster.raft")

MAGIC = b"FSMRAFT1"
LEGACY_MAGIC = b"PYSYNCOBJ"
_HEAD = struct.Struct("<IIQQ")  # command length, crc32 of the rest, index, term
LogEntry = tuple[bytes, int, int]  # pysyncobj's (command, index, term)
PIPELINE_ABOVE_SECONDS = 0.002  # syncs slower than this (on average) run beside the Raft thread
SYNC_SMOOTHING = 0.2  # weight of the newest sync in the moving average
RELEASE_PIECE = 200  # log entries a compaction lets go of at a time (`_release`) ...
RELEASE_PAUSE = 0.002  # ... with this many seconds between pieces


class DurableJournal(Journal):  # type: ignore[misc]
    """pysyncobj's journal interface on a plain file; see the module doc."""

    def __init__(self, path: str, fsync: bool = True, stats: SyncStats | None = None,
                 pipeline_above: float = PIPELINE_ABOVE_SECONDS) -> None:
        self.path = path
        self.fsync = fsync
        self.pipeline_above = pipeline_above
        self.stats = stats if stats is not None else SyncStats()
        self._entries: list[LogEntry] = []
        self._ends: list[int] = []  # file offset after each entry
        self._unsynced = 0  # entries written since the last sync started
        self._dirty = False  # written or truncated since the last sync started
        self._durable = 0  # the last index a finished sync covered
        self._in_flight: Future[None] | None = None  # the sync thread's fdatasync
        self._target = 0  # the last index the sync in flight covers
        self._recent_sync_seconds = 0.0  # how long syncs take lately (moving average)
        self._sync_thread = ThreadPoolExecutor(1, thread_name_prefix="fsm-journal-sync") if fsync else None
        # not the sync thread: a release there would hold up the next sync, which commits wait for
        self._release_thread = ThreadPoolExecutor(1, thread_name_prefix="fsm-journal-release")
        self._meta_path = path + ".meta"
        self._meta: dict[str, Any] = _read_meta(self._meta_path)
        self._meta_saved = True
        self._fd = self._open()
        self._durable = self._last_index()  # _open synced what it read

    # -- the log ------------------------------------------------------------

    def add(self, command: Any, idx: int, term: int) -> None:
        record = _record(to_bytes(command), idx, term)
        try:
            _write_all(self._fd, record)
        except OSError:
            os.ftruncate(self._fd, self._end())  # no half record in front of later ones
            raise
        self._entries.append((command, idx, term))
        self._ends.append(self._end() + len(record))
        self._unsynced += 1
        self._dirty = True

    def clear(self) -> None:
        self.deleteEntriesFrom(0)

    def deleteEntriesFrom(self, entryFrom: int) -> None:  # noqa: N802 - pysyncobj's name
        if entryFrom >= len(self._entries):
            return
        kept_through = self._entries[entryFrom][1] - 1
        self._durable = min(self._durable, kept_through)
        self._target = min(self._target, kept_through)
        self._unsynced = max(0, self._unsynced - (len(self._entries) - entryFrom))
        del self._entries[entryFrom:]
        del self._ends[entryFrom:]
        os.ftruncate(self._fd, self._end())
        self._dirty = True

    def deleteEntriesTo(self, entryTo: int) -> None:  # noqa: N802 - pysyncobj's name
        kept = self._entries[entryTo:]
        self._wait_in_flight()  # its fdatasync uses the descriptor replaced here
        replaced, entries = self._fd, self._entries
        self._fd = self._rewrite(kept)  # `_entries` is now the kept ones
        self._release_thread.submit(_release, replaced, entries)

    def __getitem__(self, item: Any) -> Any:
        return self._entries[item]

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes of the journal file: the entries since the last compaction."""
        return self._end()

    # -- durability ---------------------------------------------------------

    @property
    def dirty(self) -> bool:
        """True when something was written since the last sync started (always False with fsync off)."""
        return self._dirty and self.fsync

    @property
    def durable_index(self) -> int:
        """The last Raft index on disk for sure: a power cut keeps every entry up to it."""
        return self._durable if self.fsync else self._last_index()

    @property
    def syncing(self) -> bool:
        return self._in_flight is not None

    def start_sync(self, on_done: Callable[[], None]) -> bool:
        """One fdatasync of everything written so far; False if none started.

        Starts nothing while a sync is in flight or nothing is dirty. On a fast
        disk (recent syncs under `PIPELINE_ABOVE_SECONDS`) it syncs right here:
        handing a sub-millisecond sync to another thread and back
        costs more CPU than it frees (two GIL hand-overs and a wake-up of the
        Raft thread; ~15 % more server CPU per write on the bench). Otherwise
        the sync thread runs it, `on_done` runs there when it finishes (the
        member wakes its poller), and `collect` makes it count.
        """
        if self._in_flight is not None or not self.dirty or self._sync_thread is None:
            return False
        if self._recent_sync_seconds < self.pipeline_above:
            self.sync()
            return True
        covered, self._target = self._unsynced, self._last_index()
        self._unsynced, self._dirty = 0, False
        self._in_flight = self._sync_thread.submit(self._fdatasync, self._fd, covered)
        self._in_flight.add_done_callback(lambda _: on_done())
        return True

    def finished(self) -> bool:
        """A sync ended and `collect` has not counted it yet."""
        return self._in_flight is not None and self._in_flight.done()

    def collect(self) -> bool:
        """Count a finished sync: `durable_index` moves to what it covered. True if one finished."""
        if self._in_flight is None or not self._in_flight.done():
            return False
        self._in_flight.result()  # a failed sync has already stopped the node (_stop)
        self._in_flight = None
        self._durable = max(self._durable, self._target)
        return True

    def sync(self) -> int:
        """Make every append and truncation so far durable, now; returns the entries the last sync covered."""
        self._wait_in_flight()
        if not self.dirty:
            return 0
        covered, self._target = self._unsynced, self._last_index()
        self._unsynced, self._dirty = 0, False
        self._fdatasync(self._fd, covered)
        self._durable = self._target
        return covered

    def flush(self) -> None:
        self.sync()

    def _destroy(self) -> None:
        self.sync()
        os.close(self._fd)
        self._release_thread.shutdown(wait=True)
        if self._sync_thread is not None:
            self._sync_thread.shutdown(wait=True)

    def _wait_in_flight(self) -> None:
        if self._in_flight is not None:
            self._in_flight.result()
            self.collect()

    def _fdatasync(self, fd: int, covered: int) -> None:
        started = time.perf_counter()
        with self.stats.timed(covered):
            try:
                os.fdatasync(fd)
            except OSError as exc:
                _stop(f"syncing the journal {self.path} failed", exc)
        took = time.perf_counter() - started
        self._recent_sync_seconds += (took - self._recent_sync_seconds) * SYNC_SMOOTHING

    def _last_index(self) -> int:
        return self._entries[-1][1] if self._entries else 0

    # -- term, vote, commit index ----------------------------------------------

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:  # noqa: N802
        self._meta["raftCommitIndex"] = raftCommitIndex
        self._meta_saved = False

    def getRaftCommitIndex(self) -> int:  # noqa: N802
        return int(self._meta.get("raftCommitIndex", 1))

    def setCurrentTerm(self, term: int, votedForNodeId: Any) -> None:  # noqa: N802
        self._meta["currentTerm"] = term
        self._meta["votedForNodeId"] = votedForNodeId
        self._store_meta()

    def getCurrentTerm(self) -> int:  # noqa: N802
        return int(self._meta.get("currentTerm", 0))

    def getVotedForNodeId(self) -> Any:  # noqa: N802
        return self._meta.get("votedForNodeId")

    def onOneSecondTimer(self) -> None:  # noqa: N802
        if not self._meta_saved:
            self._store_meta()

    def _store_meta(self) -> None:
        try:
            _replace_file(self._meta_path, dumps(self._meta), self.fsync)
        except OSError as exc:
            _stop(f"storing term and vote in {self._meta_path} failed", exc)
        self._meta_saved = True

    # -- the file -------------------------------------------------------------

    def _end(self) -> int:
        return self._ends[-1] if self._ends else len(MAGIC)

    def _open(self) -> int:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return self._rewrite([])
        if data.startswith(LEGACY_MAGIC):
            log.info("converting pysyncobj's journal %s to ours", self.path)
            return self._rewrite(_legacy_entries(self.path))
        if not data.startswith(MAGIC):
            raise RuntimeError(f"{self.path} is not a Raft journal (unknown header {data[:8]!r})")
        self._entries, self._ends = _parse(data)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        if self._end() < len(data):
            log.warning("journal %s: dropping %d bytes after the last whole record (a tail torn by a power cut: never synced)",
                        self.path, len(data) - self._end())
            os.ftruncate(fd, self._end())
        if self.fsync:  # a tail that only a page cache held (kill -9) must not count as held
            os.fsync(fd)
        return fd

    def _rewrite(self, entries: list[LogEntry]) -> int:
        """Write `entries` to a new file, sync it, rename it into place; returns its descriptor."""
        records = [_record(*entry) for entry in entries]
        _replace_file(self.path, MAGIC + b"".join(records), durable=True)
        self._entries, self._ends, offset = list(entries), [], len(MAGIC)
        for record in records:
            offset += len(record)
            self._ends.append(offset)
        self._unsynced, self._dirty = 0, False
        self._durable = self._target = self._last_index()
        return os.open(self.path, os.O_WRONLY | os.O_APPEND)


def _release(fd: int, entries: list[LogEntry]) -> None:
    """What a compaction leaves behind, let go of on the release thread: the old file and the
    dropped entries' memory. Both cost the Raft thread tens of ms when it did this itself.

    The rename in `_rewrite` took the old file's last name, so the kernel frees its blocks
    when this last descriptor closes: 64-92 ms for the ~90 MB that 5,000 batch entries weigh
    (ext4, the bench box). The entries are let go of a piece at a time with a pause between:
    their memory was shared with the dump process forked just before, and writing to it takes
    a page fault per page (8,000-13,000 faults, 11-42 ms holding the GIL, for those 90 MB)."""
    os.close(fd)
    while entries:
        del entries[-RELEASE_PIECE:]
        time.sleep(RELEASE_PAUSE)  # lets the node's threads have the GIL between pieces


def _stop(what: str, exc: OSError) -> None:
    """A failed sync stops the node (exit 74).

    After a failed fsync the kernel may have dropped the unsynced pages and
    marked them clean, so a later sync that succeeds proves nothing about them
    (PostgreSQL's rule since 2018). Carrying on could acknowledge entries that
    are not on disk; a restart reads back what really is.
    """
    log.critical("%s: %s; stopping the node", what, exc)
    logging.shutdown()
    os._exit(74)


def _record(command: bytes, idx: int, term: int) -> bytes:
    crc = zlib.crc32(command, zlib.crc32(struct.pack("<QQ", idx, term)))
    return _HEAD.pack(len(command), crc, idx, term) + command


def _parse(data: bytes) -> tuple[list[LogEntry], list[int]]:
    """The records of a journal file up to the first torn or damaged one."""
    entries: list[LogEntry] = []
    ends: list[int] = []
    offset = len(MAGIC)
    while offset + _HEAD.size <= len(data):
        size, crc, idx, term = _HEAD.unpack_from(data, offset)
        end = offset + _HEAD.size + size
        command = data[offset + _HEAD.size:end]
        if end > len(data) or zlib.crc32(command, zlib.crc32(struct.pack("<QQ", idx, term))) != crc:
            break
        entries.append((command, idx, term))
        ends.append(end)
        offset = end
    return entries, ends


def _legacy_entries(path: str) -> list[LogEntry]:
    legacy = FileJournal(path)
    try:
        return [legacy[i] for i in range(len(legacy))]
    finally:
        legacy._destroy()


def _read_meta(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            meta = loads(f.read())
    except (OSError, EOFError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _replace_file(path: str, data: bytes, durable: bool) -> None:
    """Write a new file next to `path` and rename it over `path`; synced (file and directory) if durable."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        _fsync_dir(path)


def sync_file(path: str) -> None:
    """fsync a file and the directory that names it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_dir(path)


def _fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def align_with_dump(journal: Any, raft_data: Sequence[Any]) -> None:
    """Drop the journal's entries before the dump's two, when it holds both.

    pysyncobj replaces the dump file a tick before it compacts the journal, and
    at start compares the journal's first two entries with the two the dump
    records: if they differ it *clears the journal*, so a kill in between threw
    away every entry after the snapshot. This runs as the dump is loaded.
    `raft_data` is what the dump records: (last applied entry, the one before
    it, membership), each entry (command, index, term). A journal that ends
    before the dump, or does not hold the same entries, is left for pysyncobj
    to replace.
    """
    if len(journal) < 2:
        return
    last, before = raft_data[0], raft_data[1]
    position = before[1] - journal[0][1]
    if position <= 0 or position + 1 >= len(journal):
        return  # already aligned, or the dump is newer than (or older than) the journal
    if _same(journal[position], before) and _same(journal[position + 1], last):
        journal.deleteEntriesTo(position)


def _same(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return bool(a[1] == b[1] and a[2] == b[2])  # Raft: same index and term, same entry
