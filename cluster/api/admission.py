"""Admission control: bounded in-flight work per node, in two lanes (SPEC 4.8, 4.9).

Every write and linearizable read holds a permit of its lane while the node
works on it (proposing, waiting for the commit, confirming a read). A permit
costs one unit per transition (a batch costs its operation count, a read one).
When a lane's units are taken, or when the lane is busy (at least a quarter of
its units taken) and its oldest request has already waited `max_wait` seconds
(the node is not keeping up, whatever its throughput is today: a fixed unit
limit alone is a bounded wait only at a given throughput, Little's law), a new
request is refused at once with
`429 overloaded` and `Retry-After`, before any work: the queue stays short and
clients back off instead of piling up seconds of latency.

Two lanes, each with its own limit: `high` (an `X-Priority: high` header, or a
machine whose definition says `priority: high`, e.g. lock renewals and dedup
checks) and `normal` (everything else). A high request is admitted even when
the normal lane is full, and its entry is proposed ahead of normal ones: group
commit sends it at once in a group of its own (`cluster/raft/group_commit.py`),
a follower forwards it ahead of pysyncobj's queue, and the leader's log gate
lets it into the Raft log past the normal work it holds
(`cluster/raft/log_gate.py`). An oversized request (a batch costing more than
its whole lane) is admitted when its lane is idle, so every request can
eventually run.

This admission is per node; the cluster-wide part is on the leader: the log gate
keeps at most `--log-budget` bytes of normal work in the log, and refuses a
follower's forwarded command once the gate's oldest held command has waited
`max_wait` (the follower answers `429 overloaded`, as here), so clients of
followers cannot pile work onto the leader.

Everything runs on the asyncio thread.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web

from .errors import ApiError

HIGH, NORMAL = "high", "normal"
LANES = (HIGH, NORMAL)
PRIORITY_HEADER = "X-Priority"
MACHINE_PRIORITY_TTL = 1.0  # seconds a machine's default lane is cached
RETRY_AFTER_SECONDS = 1
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})


@dataclass
class Lane:
    name: str
    limit: int
    in_flight: int = 0
    admitted: int = 0
    rejected: int = 0
    started: dict[int, float] = field(default_factory=dict)  # permit -> admitted at, oldest first

    def slow(self, now: float, max_wait: float) -> bool:
        """Busy and not keeping up. A lone request waiting out a leader election is not
        overload (and must not get the lane refused: that would turn failover into 429s)."""
        return self.in_flight >= self.limit // 4 and self.oldest_wait(now) > max_wait

    def oldest_wait(self, now: float) -> float:
        for at in self.started.values():
            return now - at
        return 0.0


class Admission:
    def __init__(self, normal_limit: int, high_limit: int,
                 machine_priority: Callable[[str], str | None] = lambda name: None,
                 max_wait: float = 0.3, clock: Callable[[], float] = time.monotonic) -> None:
        self.lanes = {NORMAL: Lane(NORMAL, normal_limit), HIGH: Lane(HIGH, high_limit)}
        self.max_wait = max_wait
        self.clock = clock
        self._permits = itertools.count()
        self._machine_priority = machine_priority  # the current definition's `priority:`
        self._machine_cache: dict[str, tuple[float, str]] = {}

    def lane_of(self, request: web.Request, machines: tuple[str, ...] = ()) -> str:
        """The header's lane; else `high` when every machine the request touches says so."""
        header = request.headers.get(PRIORITY_HEADER)
        if header is not None:
            value = header.strip().lower()
            if value not in LANES:
                raise ApiError("invalid_request",
                               f"{PRIORITY_HEADER} must be 'high' or 'normal', not {header!r}")
            return value
        if machines and all(self._default_of(m) == HIGH for m in set(machines)):
            return HIGH
        return NORMAL

    def _default_of(self, machine: str) -> str:
        now = time.monotonic()
        cached = self._machine_cache.get(machine)
        if cached is not None and cached[0] > now:
            return cached[1]
        lane = self._machine_priority(machine) or NORMAL
        if len(self._machine_cache) > 10_000:
            self._machine_cache.clear()
        self._machine_cache[machine] = (now + MACHINE_PRIORITY_TTL, lane)
        return lane

    def refuse_early(self, request: web.Request) -> None:
        """429 before the body is even read, when the request's lane is already full.

        Parsing a refused batch costs as much as parsing an admitted one; under
        overload that work is what would starve the admitted requests.
        """
        if request.method not in WRITE_METHODS or request.path.startswith("/v1/cluster"):
            return
        machine = request.match_info.get("machine")
        lane = self.lanes[self.lane_of(request, (machine,) if machine else ())]
        if lane.in_flight >= lane.limit or lane.slow(self.clock(), self.max_wait):
            self._refuse(lane)

    def _refuse(self, lane: Lane) -> None:
        lane.rejected += 1
        waited = lane.oldest_wait(self.clock())
        why = (f"its oldest request has waited {waited:.2f}s" if waited > self.max_wait
               else f"it has {lane.in_flight} of {lane.limit} operations in flight")
        raise ApiError(
            "overloaded",
            f"this node is overloaded in the {lane.name} lane ({why}); "
            f"retry after {RETRY_AFTER_SECONDS}s or on another node",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @contextmanager
    def permit(self, lane_name: str, cost: int = 1) -> Iterator[None]:
        """Hold `cost` units of the lane for the duration; 429 overloaded when they are taken."""
        lane = self.lanes[lane_name]
        now = self.clock()
        if lane.in_flight and (lane.in_flight + cost > lane.limit or lane.slow(now, self.max_wait)):
            self._refuse(lane)
        permit = next(self._permits)
        lane.started[permit] = now
        lane.in_flight += cost
        lane.admitted += 1
        try:
            yield
        finally:
            lane.in_flight -= cost
            del lane.started[permit]
