"""The Raft journal on disk: group sync, a torn tail, compaction a kill cannot tear, agreement with the dump."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pysyncobj.journal import FileJournal

from cluster.raft.journal import MAGIC, DurableJournal, align_with_dump


class Killed(Exception):
    """Stands for kill -9: the process stops at this point, leaving the file as it is."""


def journal_with(path: Path, count: int, term: int = 3, fsync: bool = True) -> DurableJournal:
    journal = DurableJournal(str(path), fsync=fsync)
    for idx in range(1, count + 1):
        journal.add(f"command {idx}".encode(), idx, term)
    return journal


def pysyncobj_journal_with(path: Path, count: int, term: int = 3) -> FileJournal:
    journal = FileJournal(str(path))
    for idx in range(1, count + 1):
        journal.add(f"command {idx}".encode(), idx, term)
    return journal


def indexes_on_disk(path: Path) -> list[int]:
    """What a restarted node reads back."""
    reopened = DurableJournal(str(path))
    try:
        return [entry[1] for entry in (reopened[i] for i in range(len(reopened)))]
    finally:
        reopened._destroy()


def test_compaction_keeps_the_tail_and_later_appends(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    journal = journal_with(path, 100)
    journal.deleteEntriesTo(40)  # drop indexes 1..40
    assert [journal[i][1] for i in range(len(journal))] == list(range(41, 101))
    journal.add(b"command 101", 101, 4)
    journal.add(b"command 102", 102, 4)
    journal._destroy()
    assert indexes_on_disk(path) == list(range(41, 103))
    reopened = DurableJournal(str(path))
    assert reopened[0] == (b"command 41", 41, 3) and reopened[-1] == (b"command 102", 102, 4)
    reopened._destroy()


def test_compaction_does_not_wait_for_the_old_file_to_be_freed(tmp_path: Path) -> None:
    """The kernel frees a replaced journal's blocks at its last close (60-90 ms on the Raft
    thread for the ~90 MB of 5,000 batch entries): compaction must return without it."""
    path = tmp_path / "raft.journal"
    journal = journal_with(path, 100)
    journal.sync()
    old_fd = journal._fd
    real_close = os.close
    closed_on: list[str] = []

    def slow_close(fd: int) -> None:
        if fd == old_fd:  # a large file: the close does the freeing
            closed_on.append(threading.current_thread().name)
            time.sleep(2.0)
        real_close(fd)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("cluster.raft.journal.os.close", slow_close)
        began = time.monotonic()
        journal.deleteEntriesTo(40)
        took = time.monotonic() - began
        journal.add(b"command 101", 101, 4)
        journal.sync()
        journal._destroy()  # waits for the release
    assert took < 1.0, f"compaction waited {took:.2f} s for the old file's close"
    assert closed_on and closed_on[0] != threading.current_thread().name
    assert indexes_on_disk(path) == list(range(41, 102))


def test_compaction_lets_go_of_the_dropped_entries_on_another_thread(tmp_path: Path) -> None:
    """Freeing a large log's dropped entries right after the dump process was forked faults in
    every page they shared with it (8,000-13,000 faults, 11-42 ms for 90 MB): not on the Raft
    thread, which calls deleteEntriesTo."""
    freed_on: list[str] = []

    class Command(bytes):
        def __del__(self) -> None:
            freed_on.append(threading.current_thread().name)

    path = tmp_path / "raft.journal"
    journal = DurableJournal(str(path))
    for idx in range(1, 101):
        journal.add(Command(f"command {idx}".encode()), idx, 3)
    journal.sync()
    journal.deleteEntriesTo(40)
    journal._destroy()  # waits for the release thread
    caller = threading.current_thread().name
    assert len(freed_on) == 40 and caller not in freed_on
    assert indexes_on_disk(path) == list(range(41, 101))


def test_one_sync_covers_every_append_since_the_last(tmp_path: Path) -> None:
    journal = journal_with(tmp_path / "raft.journal", 5)
    assert journal.dirty
    assert journal.sync() == 5 and not journal.dirty
    assert journal.sync() == 0  # nothing new: no fdatasync
    journal.add(b"six", 6, 3)
    journal.add(b"seven", 7, 3)
    journal.deleteEntriesFrom(6)  # a truncation is synced too
    assert journal.dirty and journal.sync() == 1 and not journal.dirty
    assert journal.stats.syncs == 2 and journal.stats.entries.total == 6
    journal._destroy()


def test_fsync_off_is_never_dirty(tmp_path: Path) -> None:
    journal = journal_with(tmp_path / "raft.journal", 5, fsync=False)
    assert not journal.dirty and journal.sync() == 0 and journal.stats.syncs == 0
    journal._destroy()


def test_a_torn_tail_is_cut_at_the_last_whole_record(tmp_path: Path) -> None:
    """A power cut keeps a prefix of what was written after the last sync: never acknowledged."""
    path = tmp_path / "raft.journal"
    journal = journal_with(path, 10)
    journal._destroy()
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 3)  # the last record half written
    assert indexes_on_disk(path) == list(range(1, 10))
    with open(path, "r+b") as f:  # a damaged record (and whatever follows) is dropped too
        f.seek(len(MAGIC) + 33 + 30)  # inside the second record (33 bytes each)
        f.write(b"\xff")
    assert indexes_on_disk(path) == [1]
    journal = DurableJournal(str(path))
    journal.add(b"command 2", 2, 4)  # appended after the cut, readable again
    journal._destroy()
    assert indexes_on_disk(path) == [1, 2]


def test_truncation_then_appends(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    journal = journal_with(path, 10)
    journal.deleteEntriesFrom(6)  # a conflict: indexes 7..10 go
    journal.add(b"new 7", 7, 5)
    journal._destroy()
    assert indexes_on_disk(path) == [1, 2, 3, 4, 5, 6, 7]
    reopened = DurableJournal(str(path))
    assert reopened[-1] == (b"new 7", 7, 5)
    reopened._destroy()


def test_term_vote_and_commit_index_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    journal = journal_with(path, 3)
    journal.setCurrentTerm(7, "127.0.0.1:4001")
    journal.setRaftCommitIndex(2)
    journal.onOneSecondTimer()
    journal._destroy()
    reopened = DurableJournal(str(path))
    assert (reopened.getCurrentTerm(), reopened.getVotedForNodeId(), reopened.getRaftCommitIndex()) == (
        7, "127.0.0.1:4001", 2)
    reopened._destroy()


def test_a_pysyncobj_journal_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    legacy = pysyncobj_journal_with(path, 20)
    legacy.setCurrentTerm(3, None)
    legacy._destroy()
    journal = DurableJournal(str(path))
    assert len(journal) == 20 and journal[0] == (b"command 1", 1, 3) and journal.getCurrentTerm() == 3
    journal._destroy()
    assert path.read_bytes().startswith(MAGIC)
    assert indexes_on_disk(path) == list(range(1, 21))


def test_pysyncobj_compaction_killed_midway_loses_entries(tmp_path: Path) -> None:
    """The control: pysyncobj's own FileJournal rewrites the kept entries in place, one by one."""
    path = tmp_path / "raft.journal"
    journal = pysyncobj_journal_with(path, 100)
    original_add = FileJournal.add
    writes = 0

    def add_then_die(self: FileJournal, *entry: object) -> None:
        nonlocal writes
        writes += 1
        if writes > 10:
            raise Killed
        original_add(self, *entry)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FileJournal, "add", add_then_die)
        with pytest.raises(Killed):
            journal.deleteEntriesTo(40)
    journal._destroy()
    assert pysyncobj_indexes_on_disk(path) == list(range(41, 51))  # 51..100 were acknowledged, and are gone


def pysyncobj_indexes_on_disk(path: Path) -> list[int]:
    reopened = FileJournal(str(path))
    try:
        return [entry[1] for entry in (reopened[i] for i in range(len(reopened)))]
    finally:
        reopened._destroy()


@pytest.mark.parametrize("dies_at", ["writing", "renaming"])
def test_compaction_killed_midway_leaves_the_old_journal_whole(tmp_path: Path, dies_at: str) -> None:
    path = tmp_path / "raft.journal"
    journal = journal_with(path, 100)
    journal.sync()

    def die(*_args: object, **_kw: object) -> None:
        raise Killed

    with pytest.MonkeyPatch.context() as patch:
        if dies_at == "writing":
            patch.setattr("cluster.raft.journal._record", die)
        else:
            patch.setattr("cluster.raft.journal.os.replace", die)
        with pytest.raises(Killed):
            journal.deleteEntriesTo(40)
    assert indexes_on_disk(path) == list(range(1, 101))
    assert not os.path.exists(str(path) + ".tmp") or dies_at == "renaming"


def raft_data(last: int, term: int = 3) -> tuple[object, ...]:
    return ((f"command {last}".encode(), last, term), (f"command {last - 1}".encode(), last - 1, term), set())


def test_align_drops_what_the_dump_covers_so_the_rest_is_kept(tmp_path: Path) -> None:
    """A dump renamed into place, then a kill before pysyncobj compacted the journal."""
    path = tmp_path / "raft.journal"
    journal = journal_with(path, 100)
    align_with_dump(journal, raft_data(60))
    # pysyncobj keeps a journal that starts with the dump's two entries, and replays the rest
    assert journal[0][1:] == (59, 3) and journal[1][1:] == (60, 3) and len(journal) == 42
    journal._destroy()
    assert indexes_on_disk(path) == list(range(59, 101))


@pytest.mark.parametrize(
    ("dump", "why"),
    [
        (raft_data(60, term=2), "same indexes, other terms: not the same entries"),
        (raft_data(150), "the dump is newer than the whole journal"),
        (raft_data(101), "the journal holds the entry before the dump's last, not its last"),
        (raft_data(2), "already aligned"),
    ],
)
def test_align_leaves_other_journals_alone(tmp_path: Path, dump: tuple[object, ...], why: str) -> None:
    path = tmp_path / "raft.journal"
    journal = journal_with(path, 100)
    align_with_dump(journal, dump)
    assert len(journal) == 100, why


def test_a_failed_sync_stops_the_process(tmp_path: Path) -> None:
    """After a failed fsync the kernel may have dropped the pages: carrying on could acknowledge them."""
    script = (
        "import errno, os, sys\n"
        "from cluster.raft.journal import DurableJournal\n"
        "journal = DurableJournal(sys.argv[1])\n"
        "journal.add(b'x', 1, 1)\n"
        "def fail(fd): raise OSError(errno.EIO, 'Input/output error')\n"
        "os.fdatasync = fail\n"
        "journal.sync()\n"
        "print('carried on')\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "raft.journal")],
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert done.returncode == 74, done
    assert "carried on" not in done.stdout and "stopping the node" in done.stderr


def wait_for_sync(journal: DurableJournal) -> None:
    deadline = time.monotonic() + 10
    while not journal.collect():
        assert time.monotonic() < deadline, "the sync thread did not finish"
        time.sleep(0.001)


def pipelined(path: Path, count: int) -> DurableJournal:
    journal = DurableJournal(str(path), pipeline_above=0.0)  # every sync on the sync thread
    for idx in range(1, count + 1):
        journal.add(f"command {idx}".encode(), idx, 3)
    return journal


def test_a_pipelined_sync_makes_durable_only_what_was_written_before_it_started(tmp_path: Path) -> None:
    journal = pipelined(tmp_path / "raft.journal", 3)
    assert journal.durable_index == 0 and journal.dirty
    woken = threading.Event()
    assert journal.start_sync(woken.set)
    assert not journal.start_sync(woken.set)  # one in flight at a time
    journal.add(b"four", 4, 3)  # written while the sync runs: not covered by it
    assert woken.wait(10)
    wait_for_sync(journal)
    assert journal.durable_index == 3 and journal.dirty
    assert journal.start_sync(lambda: None)
    wait_for_sync(journal)
    assert journal.durable_index == 4 and not journal.dirty
    journal._destroy()


def test_a_truncation_lowers_what_counts_as_durable_even_during_a_sync(tmp_path: Path) -> None:
    """Entries cut and written again at the same indexes are new: only a later sync covers them."""
    journal = pipelined(tmp_path / "raft.journal", 5)
    journal.sync()
    assert journal.durable_index == 5
    journal.add(b"six", 6, 3)
    assert journal.start_sync(lambda: None)
    journal.deleteEntriesFrom(3)  # indexes 4..6 go while the sync of 1..6 is in flight
    assert journal.durable_index == 3
    journal.add(b"four, term 4", 4, 4)
    wait_for_sync(journal)
    assert journal.durable_index == 3  # the sync in flight did not cover the new entry 4
    assert journal.sync() == 1 and journal.durable_index == 4
    journal._destroy()


def test_with_fsync_off_every_written_entry_counts_as_durable(tmp_path: Path) -> None:
    journal = journal_with(tmp_path / "raft.journal", 5, fsync=False)
    assert journal.durable_index == 5 and not journal.start_sync(lambda: None)
    journal._destroy()



def test_on_a_fast_disk_a_sync_runs_at_once(tmp_path: Path) -> None:
    """Handing a sub-millisecond sync to the sync thread costs more CPU than it frees."""
    journal = journal_with(tmp_path / "raft.journal", 3)  # syncs on tmp take well under 2 ms
    assert journal.start_sync(lambda: None) and not journal.syncing
    assert journal.durable_index == 3 and not journal.dirty
    slow = DurableJournal(str(tmp_path / "slow.journal"), pipeline_above=0.0)
    slow.add(b"one", 1, 3)
    assert slow.start_sync(lambda: None) and slow.syncing
    wait_for_sync(slow)
    assert slow.durable_index == 1
    journal._destroy()
    slow._destroy()
