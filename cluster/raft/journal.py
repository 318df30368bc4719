"""The Raft log on disk: compaction that survives a kill -9, and a journal that agrees with the dump.

pysyncobj keeps the log in a `FileJournal` (records in an mmap'd file) and a
snapshot ("dump") next to it. Two of its steps lose acknowledged entries when
the process is killed at the wrong moment; the soak found both (docs/RELIABILITY.md):

1. After a snapshot, `FileJournal.deleteEntriesTo` drops the entries the
   snapshot covers by *clearing the file and writing every kept entry again*,
   one by one. Killed in between, the journal holds only a prefix of what the
   node had acknowledged. `CompactingJournal` writes the kept entries to a new
   file and renames it over the old one: the journal is either the old one or
   the new one.
2. The dump file is replaced before the journal is compacted (the next tick).
   At start pysyncobj compares the journal's first two entries with the two the
   dump records and, if they differ, *clears the journal*: a kill between the
   two steps threw away every entry after the snapshot. `align_with_dump` runs
   as the dump is loaded and first drops the journal's entries before the
   dump's, when the journal holds the dump's entries, so pysyncobj keeps the rest.

Both reach into pysyncobj 0.3.17's private attributes; `adopt` checks that they
exist, so an upgrade that renames them fails at start, not at the first snapshot.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from typing import Any

from pysyncobj.journal import (
    FIRST_RECORD_OFFSET,
    LAST_RECORD_OFFSET_OFFSET,
    FileJournal,
    ResizableFile,
)
from pysyncobj.pickle import to_bytes

_OFFSET = struct.Struct("<I")
_IDX_TERM = struct.Struct("<QQ")


class CompactingJournal(FileJournal):  # type: ignore[misc]
    """A `FileJournal` whose compaction replaces the file atomically. Made by `adopt`, never built."""

    path: str

    def deleteEntriesTo(self, entryTo: int) -> None:  # noqa: N802 - pysyncobj's name
        kept = self._FileJournal__journal[entryTo:]  # type: ignore[has-type]
        body = b"".join(_record(*entry) for entry in kept)
        end = FIRST_RECORD_OFFSET + len(body)
        header = self._FileJournal__getDefaultHeader()[:LAST_RECORD_OFFSET_OFFSET] + _OFFSET.pack(end)
        tmp = self.path + ".compact.tmp"
        with open(tmp, "wb") as f:
            f.write(header + body)
            f.flush()
            os.fsync(f.fileno())
        self._FileJournal__journalFile._destroy()  # type: ignore[has-type]
        os.replace(tmp, self.path)
        _fsync_dir(self.path)
        self._FileJournal__journalFile = ResizableFile(self.path)
        self._FileJournal__journal = list(kept)
        self._FileJournal__currentOffset = end


def adopt(journal: Any, path: str) -> None:
    """Turn pysyncobj's `FileJournal` instance into a `CompactingJournal` in place."""
    if type(journal) is not FileJournal:
        raise RuntimeError(f"expected pysyncobj's FileJournal, got {type(journal).__name__}")
    for name in ("_FileJournal__journal", "_FileJournal__journalFile", "_FileJournal__currentOffset"):
        if not hasattr(journal, name):
            raise RuntimeError(f"pysyncobj's FileJournal has no {name}: this pysyncobj is not supported")
    journal.__class__ = CompactingJournal
    journal.path = path


def align_with_dump(journal: Any, raft_data: Sequence[Any]) -> None:
    """Drop the journal's entries before the dump's two, when it holds both (see the module doc).

    `raft_data` is what the dump records: (last applied entry, the one before it,
    membership), each entry (command, index, term). A journal that ends before
    the dump, or does not hold the same entries, is left for pysyncobj to replace.
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


def _record(command: Any, idx: int, term: int) -> bytes:
    data = _IDX_TERM.pack(idx, term) + to_bytes(command)
    size = _OFFSET.pack(len(data))
    return size + data + size


def _fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
