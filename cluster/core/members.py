"""The members' addresses in the replicated state: applying a `Member` entry.

Raft knows members by their Raft address only. So that every node can tell a
client where every member serves HTTP (and the leader's HTTP address), each node
publishes its own address through the log; this is the pure half of that.
"""

from __future__ import annotations

from dataclasses import dataclass

from .entries import Member
from .outcome import Outcome, Rejected

MAX_ADDRESS_CHARS = 256


@dataclass(frozen=True, slots=True)
class MemberInfo:
    http: str
    name: str


def apply_member(members: dict[str, MemberInfo], cmd: Member) -> Outcome:
    """Remember (or, with `http=None`, forget) one member's HTTP address and name."""
    for field, value in (("raft", cmd.raft), ("http", cmd.http), ("name", cmd.name)):
        if value is not None and (not isinstance(value, str) or len(value) > MAX_ADDRESS_CHARS):
            raise Rejected("invalid_request",
                           f"member {field} must be a string of at most {MAX_ADDRESS_CHARS} characters")
    if not cmd.raft:
        raise Rejected("invalid_request", "member raft address is empty")
    if cmd.http is None:
        members.pop(cmd.raft, None)
        return Outcome("ok", {"raft": cmd.raft, "forgotten": True})
    info = MemberInfo(cmd.http, cmd.name or cmd.raft)
    members[cmd.raft] = info  # one dict assignment: readers see the old or the new value
    return Outcome("ok", {"raft": cmd.raft, "http": info.http, "name": info.name})
