"""The Raft journal on disk: compaction that a kill cannot tear, and agreement with the dump at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from pysyncobj.journal import FileJournal

from cluster.raft.journal import CompactingJournal, adopt, align_with_dump


class Killed(Exception):
    """Stands for kill -9: the process stops at this point, leaving the file as it is."""


def journal_with(path: Path, count: int, term: int = 3) -> FileJournal:
    journal = FileJournal(str(path))
    for idx in range(1, count + 1):
        journal.add(f"command {idx}".encode(), idx, term)
    return journal


def indexes_on_disk(path: Path) -> list[int]:
    """What a restarted node reads back."""
    reopened = FileJournal(str(path))
    try:
        return [entry[1] for entry in (reopened[i] for i in range(len(reopened)))]
    finally:
        reopened._destroy()


def test_compaction_keeps_the_tail_and_later_appends(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    journal = journal_with(path, 100)
    adopt(journal, str(path))
    journal.deleteEntriesTo(40)  # drop indexes 1..40
    assert [journal[i][1] for i in range(len(journal))] == list(range(41, 101))
    journal.add(b"command 101", 101, 4)
    journal.add(b"command 102", 102, 4)
    journal._destroy()
    assert indexes_on_disk(path) == list(range(41, 103))
    reopened = FileJournal(str(path))
    assert reopened[0] == (b"command 41", 41, 3) and reopened[len(reopened) - 1] == (b"command 102", 102, 4)
    reopened._destroy()


def test_pysyncobj_compaction_killed_midway_loses_entries(tmp_path: Path) -> None:
    """The control: pysyncobj's own FileJournal rewrites the kept entries in place, one by one."""
    path = tmp_path / "raft.journal"
    journal = journal_with(path, 100)
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
    assert indexes_on_disk(path) == list(range(41, 51))  # 51..100 were acknowledged, and are gone


@pytest.mark.parametrize("dies_at", ["writing", "renaming"])
def test_compaction_killed_midway_leaves_the_old_journal_whole(tmp_path: Path, dies_at: str) -> None:
    path = tmp_path / "raft.journal"
    journal = journal_with(path, 100)
    adopt(journal, str(path))

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


def test_adopt_refuses_anything_but_pysyncobjs_file_journal(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    journal = journal_with(path, 2)
    adopt(journal, str(path))
    assert isinstance(journal, CompactingJournal)
    with pytest.raises(RuntimeError, match="FileJournal"):
        adopt(journal, str(path))  # already adopted: not the class we know


def raft_data(last: int, term: int = 3) -> tuple[object, ...]:
    return ((f"command {last}".encode(), last, term), (f"command {last - 1}".encode(), last - 1, term), set())


def test_align_drops_what_the_dump_covers_so_the_rest_is_kept(tmp_path: Path) -> None:
    """A dump renamed into place, then a kill before pysyncobj compacted the journal."""
    path = tmp_path / "raft.journal"
    journal = journal_with(path, 100)
    adopt(journal, str(path))
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
    adopt(journal, str(path))
    align_with_dump(journal, dump)
    assert len(journal) == 100, why
