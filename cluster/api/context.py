"""What the HTTP layer needs from a node (a Protocol, so unit tests can pass a fake),
and the application keys under which `build_app` stores it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from aiohttp import web

from cluster.config import Settings
from cluster.core.entries import Command
from cluster.core.outcome import Outcome
from cluster.core.state import ClusterState
from cluster.raft.status import RaftStatus
from cluster.storage.snapshot_file import SnapshotInfo

from .admission import Admission

if TYPE_CHECKING:  # these import this module
    from cluster.events.hub import EventHub

    from .lifecycle import Lifecycle
    from .metrics import Metrics

T = TypeVar("T")


class ClusterNode(Protocol):
    settings: Settings

    @property
    def http_of(self) -> dict[str, str | None]: ...

    @property
    def removed(self) -> bool: ...

    def names(self) -> dict[str, str]: ...

    async def hand_over(self, timeout: float) -> str | None: ...

    async def propose(
        self,
        command: Command,
        *,
        timeout: float,
        idempotency_key: str | None = None,
        principal: str | None = None,
        priority: str = "normal",
    ) -> Outcome: ...

    async def confirm_current(self, timeout: float) -> None: ...

    def read(self, fn: Callable[[ClusterState], T]) -> T: ...

    def status(self) -> RaftStatus: ...

    @property
    def applied_index(self) -> int: ...

    @property
    def commit_index(self) -> int: ...

    @property
    def snapshot_info(self) -> SnapshotInfo: ...

    async def add_member(self, raft: str, http: str | None, timeout: float) -> None: ...

    async def remove_member(self, raft: str, timeout: float) -> None: ...

    async def snapshot_now(self, timeout: float) -> SnapshotInfo: ...


NODE: web.AppKey[ClusterNode] = web.AppKey("node")
SETTINGS = web.AppKey("settings", Settings)
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
EVENTS: web.AppKey[EventHub] = web.AppKey("events")  # when the node keeps a feed
LIFECYCLE: web.AppKey[Lifecycle] = web.AppKey("lifecycle")
OPENAPI = web.AppKey("openapi", dict)  # this app's OpenAPI document, built from its routes
ADMISSION = web.AppKey("admission", Admission)


def node_of(request: web.Request) -> ClusterNode:
    node: ClusterNode = request.app[NODE]
    return node


def settings_of(request: web.Request) -> Settings:
    return request.app[SETTINGS]


def admission_of(request: web.Request) -> Admission:
    return request.app[ADMISSION]
