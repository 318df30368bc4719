"""Keeps a follower from dropping log entries it already acknowledged.

pysyncobj 0.3.17's append-entries handler deletes *every* entry after
`prevLogIdx` whenever the follower holds more, then re-adds the entries the
message carries. Raft (§5.3) truncates only on a conflict. With
`appendEntriesUseBatch=False` a heartbeat or a reordered append often carries an
older `prevLogIdx` than what the follower already has, so the follower would
shorten a log it has acknowledged to the leader — the leader may already count
those entries as committed, and a leader crash in that window could lose them
(pysyncobj logs "truncating already-applied log entries" when it happens).

Even when the message carries the dropped entries again, they are deleted from
and re-written to the journal file, and a `kill -9` between the two leaves the
follower short of entries it acknowledged.

`without_needless_truncation` rewrites such a message before pysyncobj sees it:
when every entry it carries that the follower already holds matches, and every
entry the follower holds beyond them was written in the sender's own term (so
by that very leader, which never removes its own entries), the message becomes
an append after the follower's last entry, carrying only what is new. Anything
else — a real conflict, older-term leftovers, snapshot transmissions — is
passed through unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

LogEntry = tuple[bytes, int, int]  # pysyncobj's (command, index, term)


def without_needless_truncation(
    log: Sequence[LogEntry], message: dict[str, Any], commit_index: int = 0
) -> dict[str, Any]:
    """The message with the entries the follower already holds taken out, when that is safe."""
    if message.get("type") != "append_entries" or "prevLogIdx" not in message:
        return message
    if message.get("transmission") is not None or not len(log):
        return message
    first_idx = log[0][1]
    last_idx, last_term = log[-1][1], log[-1][2]
    prev_idx = message["prevLogIdx"]
    if prev_idx > last_idx or prev_idx < first_idx:
        return message  # pysyncobj answers these itself
    if log[prev_idx - first_idx][2] != message["prevLogTerm"]:
        return skip_conflicting_term(log, message, commit_index)
    if prev_idx == last_idx:
        return message  # a plain append: nothing would be truncated
    entries = message.get("entries") or []
    held = [e for e in entries if e[1] <= last_idx]
    if any(log[idx - first_idx][2] != term for _command, idx, term in held):
        return message  # a real conflict: truncating is right
    covered = held[-1][1] if held else prev_idx
    sender_term = message.get("term")
    if any(log[p][2] != sender_term for p in range(covered + 1 - first_idx, len(log))):
        return message  # entries from an older term beyond the message: let pysyncobj decide
    fresh = [e for e in entries if e[1] > last_idx]
    return {**message, "prevLogIdx": last_idx, "prevLogTerm": last_term, "entries": fresh}


def skip_conflicting_term(
    log: Sequence[LogEntry], message: dict[str, Any], commit_index: int
) -> dict[str, Any]:
    """Points a mismatching append at the first entry of the conflicting term.

    pysyncobj answers a mismatch at `prevLogIdx` by asking the leader to retry one
    index lower, so a member that led a minority partition and piled up thousands
    of entries needs thousands of round trips to rejoin. Moving the mismatch to
    the first entry of the conflicting term (Raft §5.3's optimisation) makes it one
    round trip per term. Nothing is appended: the answer is still a rejection.

    It never goes below `commit_index + 1`: committed entries match every later
    leader's log, so the first real mismatch lies above them, and a term that
    also holds committed entries (a leader that kept leading, then lost its
    majority) must not send the leader below the follower's compacted log,
    where pysyncobj would answer "start after my last entry" and loop.
    """
    first_idx = log[0][1]
    prev_idx = message["prevLogIdx"]
    conflict_term = log[prev_idx - first_idx][2]
    position = prev_idx - first_idx
    lowest = max(0, commit_index + 1 - first_idx)
    while position > lowest and log[position - 1][2] == conflict_term:
        position -= 1
    if position + first_idx >= prev_idx:
        return message
    return {**message, "prevLogIdx": position + first_idx, "entries": []}
