"""Keeps a follower from dropping log entries it already acknowledged, or committing ones it should not.

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

`SnapshotGuard` handles the messages that carry a snapshot instead of entries
(no `prevLogIdx`), where pysyncobj does two unsafe things:

- It raises the follower's commit index to `min(leader's commit, last log
  index)` on every such message, without the log-matching check an append
  makes. A follower whose log ends in entries of an old term (say a leader cut
  off in a minority that kept accepting proposals) then *applies* those
  entries, which were never committed and which the new leader will replace:
  its state diverges and it answers its clients from it. The guard never lets
  such a message raise the commit index; the next append, which is checked,
  does that.
- It installs any snapshot it receives, replacing the whole log, even one
  older than entries the follower holds and has acknowledged (the leader's
  next index for a follower lags while appends are in flight, so it sends a
  snapshot the follower has already passed). Raft (§7) keeps the log when it
  holds the snapshot's last entry. The guard reads that entry's index and term
  from the first chunk (cluster/storage/snapshot_file.py puts them in front) and, when
  the follower already holds it, drops the chunks of that transmission.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cluster.storage.snapshot_file import snapshot_position

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


class SnapshotGuard:
    """Filters the snapshot messages of one follower (see the module doc); keeps one flag between chunks."""

    def __init__(self) -> None:
        self.dropping = False  # the current transmission carries a snapshot this follower has passed
        self.dropped = 0  # transmissions dropped, for tests and logs

    def filter(self, log: Sequence[LogEntry], message: dict[str, Any], commit_index: int) -> dict[str, Any]:
        if message.get("type") != "append_entries" or "prevLogIdx" in message:
            return message
        message = {**message, "commit_index": min(message.get("commit_index", 0), commit_index)}
        serialized = message.get("serialized")
        if serialized is None:
            return message
        data, is_first, is_last = serialized
        if is_first:
            position = snapshot_position(data)
            self.dropping = position is not None and holds(log, position, commit_index)
            self.dropped += self.dropping
        if not self.dropping:
            return message
        if is_last:
            self.dropping = False
        return {**message, "serialized": None}


def holds(log: Sequence[LogEntry], position: tuple[int, int], commit_index: int) -> bool:
    """Whether a follower with this log and commit index already has the entry at `position`."""
    index, term = position
    if index <= commit_index:
        return True  # committed here: in the log, or in this node's own snapshot
    if not len(log) or not log[0][1] <= index <= log[-1][1]:
        return False
    return bool(log[index - log[0][1]][2] == term)
