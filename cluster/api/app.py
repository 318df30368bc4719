"""`build_app(node, settings)`: the aiohttp application every node serves.

Registers exactly the routes of `routes.all_routes()` and the dashboard's (`cluster.ui`),
serves the OpenAPI document built from them, and one middleware that
turns every failure into the JSON error body of SPEC 4.9 (unknown routes and
wrong methods included) and records request metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from cluster import ui
from cluster.config import Settings
from cluster.core.machines import compiled
from cluster.errors import Overloaded, Refused, Timeout, Unavailable
from cluster.events.hub import EventHub

from .admission import Admission
from .auth import auth_middleware, load_auth_file
from .context import ADMISSION, EVENTS, LIFECYCLE, METRICS, NODE, OPENAPI, SETTINGS, ClusterNode
from .errors import ApiError, error_response
from .lifecycle import Lifecycle
from .metrics import Metrics
from .openapi import build_openapi
from .routes import all_routes, resolution_order

log = logging.getLogger("fsmcluster.api")


def build_app(node: ClusterNode, settings: Settings) -> web.Application:
    lifecycle = Lifecycle(access_log=settings.access_log)
    middlewares = [lifecycle.middleware(), answer_errors]
    if settings.auth_file:  # inside answer_errors, so 401/403 get the JSON error body
        middlewares.append(auth_middleware(load_auth_file(settings.auth_file)))
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=middlewares)
    app[NODE] = node
    app[LIFECYCLE] = lifecycle
    app[SETTINGS] = settings
    window = getattr(node, "events", None)
    if window is not None:
        add_feed(app, EventHub(window, settings.events_buffer))
    app[ADMISSION] = admission = Admission(settings.max_in_flight, settings.max_in_flight_high,
                                           lambda name: machine_priority(node, name),
                                           max_wait=settings.admission_wait)
    app[METRICS] = Metrics(node, app.get(EVENTS), admission)
    routes = [*all_routes(), *ui.ROUTES]
    for route in resolution_order(routes):
        app.router.add_route(route.method, route.path, route.handler, name=route.handler.__name__)
    app[OPENAPI] = build_openapi(routes)
    return app


def add_feed(app: web.Application, hub: EventHub) -> None:
    """The event feed's hub: delivers on this app's loop while it runs, ends streams on stop."""
    app[EVENTS] = hub

    async def start(_: web.Application) -> None:
        hub.attach(asyncio.get_running_loop())

    async def stop(_: web.Application) -> None:
        hub.detach()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)


def machine_priority(node: ClusterNode, name: str) -> str | None:
    """The `priority:` of machine `name`'s current definition (None: no such machine)."""
    entry = node.read(lambda state: state.machine(name))
    if entry is None:
        return None
    try:
        return compiled(entry).priority
    except Exception:  # a definition that no longer compiles: admission falls back to normal
        return None


def route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def answer_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        admission = request.app.get(ADMISSION)  # absent in apps built piecemeal (tests)
        if admission is not None:
            admission.refuse_early(request)
        response = await handler(request)
    except ApiError as exc:
        response = error_response(exc)
    except Overloaded as exc:
        response = error_response(ApiError("overloaded", str(exc), headers={"Retry-After": "1"}))
    except Unavailable as exc:
        response = error_response(
            ApiError("unavailable", str(exc), headers={"Retry-After": str(exc.retry_after)})
        )
    except Timeout as exc:
        response = error_response(ApiError("timeout", str(exc)))
    except Refused as exc:
        response = error_response(ApiError(exc.code, exc.message))
    except web.HTTPException as exc:
        response = http_exception(request, exc)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        response = error_response(ApiError("internal", "internal error; see the node's log"))
    request.app[METRICS].observe(
        request.method, route_label(request), response.status, time.perf_counter() - started
    )
    return response


def http_exception(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    if isinstance(exc, web.HTTPNotFound):
        return error_response(ApiError("not_found", f"no route for {request.method} {request.path}"))
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        return error_response(
            ApiError(
                "method_not_allowed",
                f"{request.method} is not allowed on {request.path} (allowed: {', '.join(allowed)})",
                headers={"Allow": ", ".join(allowed)},
            )
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return error_response(ApiError("payload_too_large", exc.text or "request body too large"))
    if exc.status < 400:
        return exc
    return error_response(ApiError("invalid_request" if exc.status < 500 else "internal", exc.reason))
