"""The leader counts itself towards a commit only for entries its journal has synced (durability.py)."""

from __future__ import annotations

from pathlib import Path

from cluster.raft.durability import durable_commit
from cluster.raft.journal import DurableJournal


def journal_of(path: Path, terms: list[int]) -> DurableJournal:
    journal = DurableJournal(str(path), fsync=False)
    for index, term in enumerate(terms, 1):
        journal.add(f"entry {index}".encode(), index, term)
    return journal


def test_past_its_durable_index_the_leader_needs_a_majority_of_followers(tmp_path: Path) -> None:
    journal = journal_of(tmp_path / "j", [2] * 10)
    # 3 voters: one follower holds 10, the other 3; the leader has synced 4
    assert durable_commit(journal, 0, 10, 4, 2, [10, 3]) == 4
    # both followers hold 8: a majority without the leader
    assert durable_commit(journal, 0, 10, 4, 2, [10, 8]) == 8
    # 5 voters: three followers must hold it
    assert durable_commit(journal, 0, 10, 2, 2, [9, 7, 7, 1]) == 7
    assert durable_commit(journal, 0, 10, 2, 2, [9, 7, 1, 1]) == 2


def test_a_one_member_cluster_commits_only_what_it_synced(tmp_path: Path) -> None:
    journal = journal_of(tmp_path / "j", [1] * 5)
    assert durable_commit(journal, 2, 5, 3, 1, []) == 3
    assert durable_commit(journal, 3, 5, 3, 1, []) == 3  # nothing new: the commit stays


def test_only_an_entry_of_the_current_term_commits_by_counting(tmp_path: Path) -> None:
    journal = journal_of(tmp_path / "j", [1, 1, 1, 2, 2, 3])
    # durable through 5, but 4 and 5 are of term 2 and the leader's term is 3: the commit stays
    assert durable_commit(journal, 3, 6, 5, 3, [1, 1]) == 3
    assert durable_commit(journal, 3, 6, 6, 3, [6, 1]) == 6  # 6 (term 3) counts, 4 and 5 commit with it
    assert durable_commit(journal, 3, 6, 5, 3, [6, 1]) == 3  # not with the leader's copy of 6 unsynced
