"""The API's route table: every route declares its method, path, handler and the
shapes it takes and returns. `build_app` registers exactly these routes and
`/v1/openapi.json` is generated from the same table, so the two cannot drift.

Imports run one way: the resource modules use `table`; this package collects them;
`api.app` registers them and builds the OpenAPI document (`api.openapi`) from them."""

from __future__ import annotations

from . import (
    batch,
    cluster,
    events,
    machines,
    objects,
    operations,
    tasks,
    transitions,
    views,
    votes,
)
from .table import Param, Route

__all__ = ["Param", "Route", "all_routes"]


def all_routes() -> list[Route]:
    routes: list[Route] = []
    for module in (machines, objects, transitions, votes, tasks, batch, events, cluster, operations,
                   views):
        routes.extend(module.ROUTES)
    return routes
