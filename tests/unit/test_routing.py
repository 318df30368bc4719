"""The node's router: every route reaches its own handler, the hot ones are tried first,
and the request metrics count per method, route and status."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from cluster import ui
from cluster.api.app import build_app
from cluster.api.context import METRICS
from cluster.api.routes import HOT, all_routes
from cluster.config import Settings


def _app() -> web.Application:
    settings = Settings(raft="127.0.0.1:1", http="127.0.0.1:2", data_dir=Path("unused"))
    return build_app(object(), settings)  # type: ignore[arg-type]  # the node is not used here


def _concrete(path: str) -> str:
    """A request path for a route path: each `{param}` becomes a plausible value."""
    return re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda m: f"x-{m.group(1)}", path)


def test_every_route_resolves_to_its_own_handler() -> None:
    app = _app()
    routes = [*all_routes(), *ui.ROUTES]

    async def resolve_all() -> list[tuple[str, str, object, object]]:
        found: list[tuple[str, str, object, object]] = []
        for route in routes:
            request = make_mocked_request(route.method, _concrete(route.path), app=app)
            match = await app.router.resolve(request)
            found.append((route.method, route.path, match.route.handler, route.handler))
        return found

    for method, path, handler, expected in asyncio.run(resolve_all()):
        assert handler is expected, (method, path)


def test_the_hot_routes_are_tried_first() -> None:
    # aiohttp tries the routes under one static prefix in registration order, a regex each
    under_machines = [r.handler for r in _app().router.routes()
                      if r.resource is not None and r.resource.canonical.startswith("/v1/machines/{")
                      and r.method != "HEAD"]
    assert under_machines[: len(HOT)] == list(HOT)


def test_request_metrics_count_per_method_route_and_status() -> None:
    metrics = _app()[METRICS]
    route = "/v1/machines/{machine}/objects/{id}"
    for status in (200, 200, 404):
        metrics.observe("GET", route, status, 0.002)
    metrics.observe("DELETE", route, 200, 0.004)

    def count(method: str, status: str) -> float:
        value = metrics.registry.get_sample_value(
            "fsm_http_requests_total", {"method": method, "route": route, "status": status})
        return value or 0.0

    assert (count("GET", "200"), count("GET", "404"), count("DELETE", "200")) == (2.0, 1.0, 1.0)
    latency = metrics.registry.get_sample_value(
        "fsm_http_request_duration_seconds_count", {"method": "GET", "route": route})
    assert latency == 3.0
