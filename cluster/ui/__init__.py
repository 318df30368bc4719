"""The web dashboard every node serves at `/ui/` (SPEC 4.8).

Only static files: an HTML shell, ES modules and a style sheet, shipped as package
data (no build step, nothing fetched from the network). The pages read and act
through the same `/v1` API as any client, with the bearer token the person enters
(kept in the browser session), so the dashboard can see and do exactly what that
token may. The shell holds no data, so `GET /ui/...` needs no token (see
`cluster.api.auth`); without a token the pages show nothing but the token form.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from cluster.api.errors import ApiError
from cluster.api.routes.table import Route

PREFIX = "/ui"
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "object-src 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def _static_files() -> dict[str, tuple[bytes, str]]:
    folder = resources.files(__package__).joinpath("static")
    found: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in TYPES:
            found[entry.name] = (entry.read_bytes(), TYPES[suffix])
    return found


FILES = _static_files()  # read once: a fixed set, so no path from a request reaches the disk


def is_ui_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


async def ui_root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(PREFIX + "/")


async def ui_index(request: web.Request) -> web.Response:
    return asset_response("index.html")


async def ui_asset(request: web.Request) -> web.Response:
    return asset_response(request.match_info["asset"])


def asset_response(name: str) -> web.Response:
    if name not in FILES:
        raise ApiError("not_found", f"the dashboard has no file '{name}'; open {PREFIX}/")
    body, content_type = FILES[name]
    return web.Response(body=body, content_type=content_type, charset="utf-8", headers=HEADERS)


ROUTES = [
    Route("GET", PREFIX, ui_root, "The web dashboard (redirects to /ui/)", "ui", {302: None},
          response_type="text/plain"),
    Route("GET", PREFIX + "/", ui_index, "The web dashboard", "ui", {200: None},
          response_type="text/html"),
    Route("GET", PREFIX + "/{asset}", ui_asset, "A file of the web dashboard", "ui",
          {200: None, 404: "Error"}, response_type="*/*"),  # HTML, JavaScript or CSS
]
