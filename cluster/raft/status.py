"""Immutable views of a Raft member's status, built on pysyncobj's thread.

pysyncobj's internals (match indexes, connected nodes, ...) change on its own
thread; reading them from the asyncio thread could see a dict change size mid
iteration. So the Raft thread builds a `RaftStatus` every few tens of
milliseconds and publishes it by replacing one attribute, and HTTP handlers only
ever read that published value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RAFT_LEADER_STATE = 2  # pysyncobj's _RAFT_STATE.LEADER


@dataclass(frozen=True, slots=True)
class MemberStatus:
    raft: str
    connected: bool
    match_index: int | None  # known only on the leader


@dataclass(frozen=True, slots=True)
class RaftStatus:
    node: str
    leader: str | None
    is_leader: bool
    term: int
    commit_index: int
    applied_index: int
    leader_commit_index: int | None
    has_quorum: bool
    caught_up: bool  # pysyncobj's isReady(): applied what the leader had committed at start
    members: tuple[MemberStatus, ...]  # the other members
    log_length: int
    leader_changes: int

    @staticmethod
    def initial(node: str) -> RaftStatus:
        return RaftStatus(node, None, False, 0, 0, 0, None, False, False, (), 0, 0)

    @staticmethod
    def from_pysyncobj(
        raw: dict[str, Any], others: list[str], caught_up: bool, leader_changes: int
    ) -> RaftStatus:
        leader = raw.get("leader")
        members = tuple(
            MemberStatus(
                raft=node,
                connected=raw.get(f"partner_node_status_server_{node}") == 2,
                match_index=raw.get(f"match_idx_server_{node}"),
            )
            for node in sorted(others)
        )
        return RaftStatus(
            node=str(raw["self"]),
            leader=str(leader) if leader is not None else None,
            is_leader=raw.get("state") == RAFT_LEADER_STATE,
            term=int(raw.get("raft_term", 0)),
            commit_index=int(raw.get("commit_idx", 0)),
            applied_index=int(raw.get("last_applied", 0)),
            leader_commit_index=raw.get("leader_commit_idx"),
            has_quorum=bool(raw.get("has_quorum")),
            caught_up=caught_up,
            members=members,
            log_length=int(raw.get("log_len", 0)),
            leader_changes=leader_changes,
        )

    @property
    def leader_connected(self) -> bool:
        """True when we are the leader or hold a connection to it."""
        if self.leader is None:
            return False
        if self.is_leader or self.leader == self.node:
            return True
        return any(m.raft == self.leader and m.connected for m in self.members)

    @property
    def lag(self) -> int:
        """Entries the leader reported committed that this node has not applied yet."""
        if self.leader_commit_index is None:
            return 0
        return max(0, int(self.leader_commit_index) - self.applied_index)

    def ready(self, max_lag: int = 1000) -> bool:
        """Has a leader (with quorum, if it is us) and has caught up with the log."""
        if self.leader is None or not self.caught_up:
            return False
        if self.is_leader and not self.has_quorum:
            return False
        if not self.leader_connected:
            return False  # pysyncobj keeps naming a dead leader when it can reach nobody
        return self.lag <= max_lag
