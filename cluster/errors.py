"""The root error of the cluster package and the failures of the replication layer.

A business rejection (guard failed, wrong version, ...) is not an exception: it is
an `Outcome` value computed by the engine. These are the failures *around* it:
the write could not be proposed, or its result did not arrive in time.
"""

from __future__ import annotations


class ClusterError(Exception):
    """Root of every error raised by the cluster package."""


class Unavailable(ClusterError):
    """No leader, no quorum, or the entry was refused: it was certainly not applied."""

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class Overloaded(Unavailable):
    """The leader refused the entry for overload (its log gate, raft/log_gate.py): not applied."""


class Timeout(ClusterError):
    """The wait ended before the outcome was known: the entry may or may not apply."""


class SnapshotError(ClusterError):
    """A snapshot could not be written or read."""


class Refused(ClusterError):
    """An operation refused before anything was proposed, with an API error code
    (e.g. `change_in_progress`, `unsafe_change`, `not_found`); nothing changed."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
