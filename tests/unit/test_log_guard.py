"""The follower-side guards: no truncation without a conflict, no commit or install without a log check."""

from __future__ import annotations

import struct

import pytest

from cluster.raft.log_guard import SnapshotGuard, without_needless_truncation
from cluster.storage.snapshot_file import snapshot_position

LOG = [(b"a", 5, 1), (b"b", 6, 2), (b"c", 7, 2), (b"d", 8, 2)]


def append(prev_idx: int, prev_term: int, entries: list, term: int = 2) -> dict:
    return {
        "type": "append_entries",
        "term": term,
        "commit_index": 6,
        "prevLogIdx": prev_idx,
        "prevLogTerm": prev_term,
        "entries": entries,
    }


def test_a_lagging_heartbeat_no_longer_drops_acknowledged_entries() -> None:
    out = without_needless_truncation(LOG, append(6, 2, []))
    assert (out["prevLogIdx"], out["prevLogTerm"], out["entries"]) == (8, 2, [])
    assert out["commit_index"] == 6


def test_a_resent_entry_that_matches_is_kept_with_what_follows() -> None:
    out = without_needless_truncation(LOG, append(6, 2, [(b"c", 7, 2)]))
    assert out["prevLogIdx"] == 8 and out["entries"] == []


def test_a_conflicting_entry_still_truncates() -> None:
    message = append(6, 2, [(b"x", 7, 3)], term=3)
    assert without_needless_truncation(LOG, message) is message


def test_entries_from_an_older_term_beyond_the_message_are_left_to_pysyncobj() -> None:
    message = append(6, 2, [], term=3)  # 7 and 8 were written in term 2, not by this leader
    assert without_needless_truncation(LOG, message) is message


def test_a_mismatch_is_moved_to_the_first_entry_of_the_conflicting_term() -> None:
    out = without_needless_truncation(LOG, append(8, 3, [(b"x", 9, 3)], term=3))
    assert (out["prevLogIdx"], out["prevLogTerm"], out["entries"]) == (6, 3, [])


def test_a_mismatch_at_the_start_of_its_term_is_left_to_pysyncobj() -> None:
    message = append(6, 1, [])
    assert without_needless_truncation(LOG, message) is message


def test_an_overlapping_append_carries_only_the_new_entries() -> None:
    out = without_needless_truncation(LOG, append(6, 2, [(b"c", 7, 2), (b"d", 8, 2), (b"e", 9, 2)]))
    assert (out["prevLogIdx"], out["prevLogTerm"], out["entries"]) == (8, 2, [(b"e", 9, 2)])


def test_messages_that_extend_the_log_pass_unchanged() -> None:
    message = append(8, 2, [(b"e", 9, 2)])
    assert without_needless_truncation(LOG, message) is message
    other = {"type": "request_vote", "term": 3}
    assert without_needless_truncation(LOG, other) is other
    snapshot = append(6, 2, []) | {"transmission": "start"}
    assert without_needless_truncation(LOG, snapshot) is snapshot
    assert without_needless_truncation([], append(0, 0, [])) == append(0, 0, [])


def test_a_prev_index_before_the_compacted_log_passes_unchanged() -> None:
    message = append(3, 1, [])
    assert without_needless_truncation(LOG, message) is message


def test_the_skip_stops_above_the_commit_index() -> None:
    log = [(b"a", 5, 1), (b"b", 6, 1), (b"c", 7, 1), (b"d", 8, 1), (b"e", 9, 1)]
    out = without_needless_truncation(log, append(9, 3, [], term=3), commit_index=6)
    assert out["prevLogIdx"] == 7  # entries up to 6 are committed: they match the leader
    unchanged = append(7, 3, [], term=3)
    assert without_needless_truncation(log, unchanged, commit_index=6) is unchanged


# -- snapshot messages -------------------------------------------------------

def snapshot_chunk(data: bytes | None, first: bool = True, last: bool = True, commit: int = 50) -> dict:
    serialized = None if data is None else (data, first, last)
    return {"type": "append_entries", "term": 3, "commit_index": commit, "serialized": serialized}


def snapshot_head(index: int, term: int) -> bytes:
    header = struct.pack("<8sQQQ", b"FSMSNAP2", index, term, 0)
    assert snapshot_position(header) == (index, term)
    return header + b"state..."


def test_a_snapshot_message_never_raises_the_commit_index() -> None:
    """Entries 7 and 8 (term 2) may conflict with the leader's: nothing checked them."""
    guard = SnapshotGuard()
    for message in (snapshot_chunk(None), snapshot_chunk(b"middle of a file", first=False, last=False)):
        assert guard.filter(LOG, message, commit_index=6)["commit_index"] == 6


def test_a_snapshot_of_an_entry_the_follower_holds_is_dropped_chunk_by_chunk() -> None:
    guard = SnapshotGuard()
    chunks = [snapshot_chunk(snapshot_head(7, 2), first=True, last=False),
              snapshot_chunk(b"more", first=False, last=False),
              snapshot_chunk(b"end", first=False, last=True)]
    assert [guard.filter(LOG, c, commit_index=6)["serialized"] for c in chunks] == [None, None, None]
    assert guard.dropped == 1 and not guard.dropping
    newer = snapshot_chunk(snapshot_head(40, 3))  # the next transmission is a newer snapshot
    assert guard.filter(LOG, newer, commit_index=6)["serialized"] == newer["serialized"]


@pytest.mark.parametrize(
    ("index", "term", "installed"),
    [
        (6, 2, False),  # at or below the commit index: already applied here
        (8, 2, False),  # held, same term: keep the log (Raft §7)
        (8, 3, True),  # same index, other term: the follower's entry conflicts
        (9, 2, True),  # beyond the follower's log
        (3, 1, False),  # below the log: covered by the follower's own snapshot (commit 6)
    ],
)
def test_which_snapshots_are_installed(index: int, term: int, installed: bool) -> None:
    message = snapshot_chunk(snapshot_head(index, term))
    out = SnapshotGuard().filter(LOG, message, commit_index=6)
    assert (out["serialized"] is not None) == installed


def test_a_version_1_snapshot_is_left_to_pysyncobj() -> None:
    message = snapshot_chunk(b"FSMSNAP1" + b"\0" * 40)
    assert SnapshotGuard().filter(LOG, message, commit_index=6)["serialized"] == message["serialized"]
