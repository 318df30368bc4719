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
from .table import Handler, Param, Route

__all__ = ["Param", "Route", "all_routes", "resolution_order"]

# The routes a node resolves most, by handler, tried first. aiohttp indexes routes by their
# path's static prefix, so every route under `/v1/machines/{...}` is one list of candidates,
# each matched with a regex in the order the routes were registered: a transition was the
# tenth candidate (what that cost: docs/BENCHMARKS.md, round nine).
HOT: tuple[Handler, ...] = (transitions.apply_transition, objects.get_object, votes.put_vote,
                            tasks.report_task)


def all_routes() -> list[Route]:
    routes: list[Route] = []
    for module in (machines, objects, transitions, votes, tasks, batch, events, cluster, operations,
                   views):
        routes.extend(module.ROUTES)
    return routes


def resolution_order(routes: list[Route]) -> list[Route]:
    """`routes` in the order a router should try them: the `HOT` ones first, the rest as
    they were. No two routes match the same request, so the order changes only the time."""
    rank = {handler: i for i, handler in enumerate(HOT)}
    return sorted(routes, key=lambda r: rank.get(r.handler, len(HOT)))
