"""Bearer-token authentication and roles (SPEC 4.10), as one aiohttp middleware.

`--auth-file FILE` is YAML or JSON mapping each token to its principal and role:

    tokens:
      "9f2c...": {principal: alice, role: write}
      "77ab...": {principal: ops, role: admin}

(the `tokens:` level may be left out). Roles are ordered read < write < admin:

| role | may |
|---|---|
| read | every GET: objects, machines, history, tasks, cluster status, metrics, openapi |
| write | transitions, votes, tasks, batches, withdrawing a pending change |
| admin | machine definitions (PUT/DELETE), removing objects, membership, snapshots |

With the file every request but `/healthz`, `/readyz` and `GET /ui/...` (the
dashboard's static shell: HTML, scripts, styles, no data; the pages then call
`/v1` with the token the person enters) needs `Authorization: Bearer <token>`: none or an unknown token is `401 unauthorized`,
a role too low is `403 forbidden`, and a vote is accepted only from the voter
itself (`PUT .../votes/alice` needs principal `alice`). The principal is stamped
on every entry the request proposes. Tokens are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from cluster.config import SettingsError

from .errors import ApiError

ROLES = ("read", "write", "admin")
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
UI_PREFIX = "/ui"  # the dashboard's static files (cluster.ui): no data in them
PRINCIPAL = web.RequestKey("principal", str)
_VOTE = re.compile(r"^/v1/machines/[^/]+/objects/[^/]+/votes/(?P<voter>[^/]+)$")
_ADMIN = (
    ("PUT", re.compile(r"^/v1/machines/[^/]+$")),
    ("DELETE", re.compile(r"^/v1/machines/[^/]+$")),
    ("DELETE", re.compile(r"^/v1/machines/[^/]+/objects/[^/]+$")),
    ("*", re.compile(r"^/v1/cluster/")),
)


@dataclass(frozen=True, slots=True)
class Identity:
    principal: str
    role: str

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


class TokenTable:
    """Token digests -> identities, loaded once at start-up."""

    def __init__(self, tokens: dict[str, Identity]) -> None:
        self._by_digest = {_digest(t): ident for t, ident in tokens.items()}

    def identify(self, token: str) -> Identity | None:
        digest = _digest(token)
        found = None
        for known, ident in self._by_digest.items():  # no early exit: constant time per table
            if hmac.compare_digest(known, digest):
                found = ident
        return found


def _digest(token: str) -> bytes:
    # a header's non-UTF-8 bytes arrive as lone surrogates (surrogateescape): hash the
    # bytes as sent, which match no token, instead of failing to encode them (a 500)
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def load_auth_file(path: str) -> TokenTable:
    """Parse `--auth-file`; SettingsError says which entry is wrong and how to fix it."""
    try:
        raw: Any = yaml.safe_load(Path(path).read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"--auth-file {path}: cannot read it: {exc}") from None
    if isinstance(raw, dict) and isinstance(raw.get("tokens"), dict):
        raw = raw["tokens"]
    if not isinstance(raw, dict) or not raw:
        raise SettingsError(f"--auth-file {path}: expected a mapping of token -> {{principal, role}}")
    tokens: dict[str, Identity] = {}
    for token, entry in raw.items():
        shown = f"{str(token)[:4]}..."
        if not isinstance(token, str) or len(token) < 16:
            raise SettingsError(f"--auth-file {path}: token {shown} must be a string of 16+ characters")
        if not isinstance(entry, dict) or set(entry) - {"principal", "role"}:
            raise SettingsError(f"--auth-file {path}: token {shown} needs exactly {{principal, role}}")
        principal, role = entry.get("principal"), entry.get("role")
        if not isinstance(principal, str) or not principal:
            raise SettingsError(f"--auth-file {path}: token {shown} has no principal")
        if role not in ROLES:
            raise SettingsError(
                f"--auth-file {path}: token {shown} has role {role!r} (use read, write or admin)"
            )
        tokens[token] = Identity(principal, role)
    return TokenTable(tokens)


def required_role(method: str, path: str) -> str:
    if method in ("GET", "HEAD", "OPTIONS"):
        return "read"
    for admin_method, pattern in _ADMIN:
        if admin_method in ("*", method) and pattern.match(path):
            return "admin"
    return "write"


def auth_middleware(table: TokenTable) -> Any:
    @web.middleware
    async def authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in OPEN_PATHS or (request.method in ("GET", "HEAD") and _ui(request.path)):
            return await handler(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        ident = table.identify(token.strip()) if scheme.lower() == "bearer" and token else None
        if ident is None:
            raise ApiError(
                "unauthorized", "send 'Authorization: Bearer <token>' with a token from the auth file",
                headers={"WWW-Authenticate": 'Bearer realm="fsmcluster"'},
            )
        needed = required_role(request.method, request.path)
        if not ident.may(needed):
            raise ApiError(
                "forbidden",
                f"{request.method} {request.path} needs role '{needed}'; "
                f"principal '{ident.principal}' has '{ident.role}'",
            )
        vote = _VOTE.match(request.path)
        if vote and request.method == "PUT" and vote["voter"] != ident.principal:
            raise ApiError(
                "forbidden",
                f"principal '{ident.principal}' may vote only as itself, not as '{vote['voter']}'",
            )
        request[PRINCIPAL] = ident.principal
        return await handler(request)

    return authenticate


def _ui(path: str) -> bool:
    return path == UI_PREFIX or path.startswith(UI_PREFIX + "/")


def principal_of(request: web.Request) -> str | None:
    return request.get(PRINCIPAL)
