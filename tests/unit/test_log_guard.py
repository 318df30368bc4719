"""The follower-side guard against pysyncobj truncating entries without a conflict."""

from __future__ import annotations

from cluster.raft.log_guard import without_needless_truncation

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
