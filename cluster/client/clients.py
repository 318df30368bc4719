"""Python client of the fsmcluster HTTP API (SPEC section 4): `AsyncClient` and `Client`.

    async with AsyncClient(["http://127.0.0.1:8101", "http://127.0.0.1:8102"]) as fsm:
        await fsm.put_machine("lock", yaml_text)
        await fsm.transition("lock", "db-1", "create")
        result = await fsm.transition("lock", "db-1", "acquire", {"owner": "w1"})

    with Client("http://127.0.0.1:8101,http://127.0.0.1:8102") as fsm:   # blocking
        fsm.get_object("lock", "db-1")

Methods return the decoded JSON body of the answer (`diagram` returns text) and
raise the typed errors of `cluster.client.errors`. Requests fail over between
the given nodes (`cluster.client.transport`); every write that may be retried
after an unknown outcome carries an `Idempotency-Key` (a fresh uuid4 unless one is
given), so a retry applies it at most once.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import quote

import aiohttp
import orjson

from . import errors
from .errors import *  # noqa: F403 - the errors are part of the client's API
from .errors import FsmError, InvalidRequest, Unavailable
from .transport import DEFAULT_URL, Response, RetryPolicy, Transport, normalize_urls
from .watch import Names, SyncWatch, Watch

__all__ = [
    "DEFAULT_URL",
    "AsyncClient",
    "Client",
    "FsmError",
    "RetryPolicy",
    "normalize_urls",
    *errors.__all__,
]

JSON = dict[str, Any]
P = ParamSpec("P")
R = TypeVar("R")


def _seg(value: str) -> str:
    if value in (".", ".."):
        # yarl would rewrite the path (/objects/. -> /objects/): refuse, as the server does
        raise InvalidRequest(
            "invalid_id", f"{value!r} is not a valid id or name: '.' and '..' are refused", (), None
        )
    return quote(value, safe=":@~._-")


def _object_path(machine: str, oid: str) -> str:
    return f"/v1/machines/{_seg(machine)}/objects/{_seg(oid)}"


def _duration(timeout: float | str | None) -> dict[str, str]:
    if timeout is None:
        return {}
    if isinstance(timeout, str):
        return {"timeout": timeout}
    return {"timeout": f"{max(1, round(timeout * 1000))}ms"}


def _attempt_timeout(policy: RetryPolicy, timeout: float | str | None) -> float | None:
    """A write's HTTP wait must outlast the commit wait asked of the server."""
    if timeout is None or isinstance(timeout, str):
        return None
    return max(policy.attempt_timeout, timeout + 2.0)


def _json(response: Response) -> JSON:
    value = orjson.loads(response.body) if response.body else {}
    return value if isinstance(value, dict) else {"value": value}


class AsyncClient:
    """Asyncio client; use as `async with`, or call `close()`."""

    def __init__(
        self,
        urls: str | Sequence[str] | None = None,
        *,
        deadline: float = 30.0,
        attempt_timeout: float = 10.0,
        policy: RetryPolicy | None = None,
        token: str | None = None,
        session: aiohttp.ClientSession | None = None,
        discover: bool = True,
    ) -> None:
        """`discover`: before the first request, add every member's URL (from `/v1/cluster`)."""
        self.policy = policy or RetryPolicy(deadline=deadline, attempt_timeout=attempt_timeout)
        self._transport = Transport(urls, self.policy, token, session, discover)

    @property
    def urls(self) -> list[str]:
        return list(self._transport.urls)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._transport.close()

    async def _call(self, method: str, path: str, **kwargs: Any) -> JSON:
        return _json(await self._transport.request(method, path, **kwargs))

    # machines (SPEC 4.1)
    async def put_machine(
        self, name: str, definition: str | bytes | Mapping[str, Any], *, content_type: str | None = None
    ) -> JSON:
        """Create or update a machine from YAML text, JSON text or a mapping."""
        if isinstance(definition, Mapping):
            body, kind = orjson.dumps(dict(definition)), "application/json"
        else:
            body = definition.encode() if isinstance(definition, str) else definition
            kind = "application/json" if body.lstrip()[:1] == b"{" else "application/yaml"
        return await self._call(
            "PUT", f"/v1/machines/{_seg(name)}", data=body,
            headers={"Content-Type": content_type or kind},
        )

    async def list_machines(self) -> JSON:
        return await self._call("GET", "/v1/machines")

    async def get_machine(self, name: str) -> JSON:
        return await self._call("GET", f"/v1/machines/{_seg(name)}")

    async def diagram(self, name: str, format: str = "mermaid") -> str:
        response = await self._transport.request(
            "GET", f"/v1/machines/{_seg(name)}/diagram", params={"format": format}
        )
        return response.body.decode("utf-8")

    async def delete_machine(self, name: str) -> JSON:
        return await self._call("DELETE", f"/v1/machines/{_seg(name)}", retry_safe=False)

    # objects (SPEC 4.2)
    async def get_object(self, machine: str, oid: str, *, consistency: str = "linearizable") -> JSON:
        return await self._call(
            "GET", _object_path(machine, oid), params={"consistency": consistency}
        )

    async def list_objects(
        self,
        machine: str,
        *,
        state: str | None = None,
        limit: int | None = None,
        after: str | None = None,
        consistency: str = "linearizable",
        prefix: str | None = None,
    ) -> JSON:
        params = {"consistency": consistency}
        given = (("state", state), ("limit", limit), ("after", after), ("prefix", prefix))
        params.update({k: str(v) for k, v in given if v is not None})
        return await self._call("GET", f"/v1/machines/{_seg(machine)}/objects", params=params)

    async def iter_objects(
        self, machine: str, *, state: str | None = None, page_size: int = 100
    ) -> AsyncIterator[JSON]:
        """Every object of a machine, following `next` page by page."""
        after: str | None = None
        while True:
            page = await self.list_objects(machine, state=state, limit=page_size, after=after)
            for item in page.get("objects", []):
                yield item
            after = page.get("next")
            if not after:
                return

    async def object_diagram(self, machine: str, oid: str, format: str = "mermaid") -> str:
        """The object on its machine's diagram: current state and the path it took."""
        response = await self._transport.request(
            "GET", _object_path(machine, oid) + "/diagram", params={"format": format}
        )
        return response.body.decode("utf-8")

    async def history(self, machine: str, oid: str, *, limit: int | None = None) -> JSON:
        params = {"limit": str(limit)} if limit is not None else None
        return await self._call("GET", _object_path(machine, oid) + "/history", params=params)

    async def delete_object(self, machine: str, oid: str) -> JSON:
        return await self._call("DELETE", _object_path(machine, oid), retry_safe=False)

    # writes (SPEC 4.3-4.6)
    async def transition(
        self,
        machine: str,
        oid: str,
        transition: str,
        data: Mapping[str, Any] | None = None,
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
        timeout: float | str | None = None,
    ) -> JSON:
        """Apply a transition: `{"object", "event"}`, or `{"object", "pending"}` when it needs votes."""
        body: JSON = {}
        if data is not None:
            body["data"] = dict(data)
        if expected_version is not None:
            body["expected_version"] = expected_version
        return await self._keyed_write(
            "POST", _object_path(machine, oid) + f"/transitions/{_seg(transition)}",
            body, idempotency_key, timeout,
        )

    async def vote(
        self,
        machine: str,
        oid: str,
        voter: str,
        approve: bool,
        change: str,
        *,
        idempotency_key: str | None = None,
        timeout: float | str | None = None,
    ) -> JSON:
        body = {"approve": approve, "change": change}
        return await self._keyed_write(
            "PUT", _object_path(machine, oid) + f"/votes/{_seg(voter)}", body, idempotency_key, timeout
        )

    async def withdraw(self, machine: str, oid: str) -> JSON:
        return await self._call("DELETE", _object_path(machine, oid) + "/pending", retry_safe=False)

    async def report_task(
        self,
        machine: str,
        oid: str,
        task: str,
        status: str,
        *,
        error: str | None = None,
        data: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        body: JSON = {"status": status}
        if error is not None:
            body["error"] = error
        if data is not None:
            body["data"] = dict(data)
        path = _object_path(machine, oid) + f"/tasks/{_seg(task)}"
        return await self._keyed_write("POST", path, body, idempotency_key, None)

    async def retry_tasks(
        self, machine: str, oid: str, status: str = "failed", *, idempotency_key: str | None = None
    ) -> JSON:
        path = _object_path(machine, oid) + "/tasks:retry"
        return await self._keyed_write("POST", path, {"status": status}, idempotency_key, None)

    async def tasks(
        self, *, status: str | None = None, machine: str | None = None, limit: int | None = None
    ) -> JSON:
        params = {k: str(v) for k, v in (("status", status), ("machine", machine), ("limit", limit)) if v is not None}
        return await self._call("GET", "/v1/tasks", params=params)

    async def batch(
        self,
        operations: Sequence[Mapping[str, Any]],
        *,
        atomic: bool = False,
        idempotency_key: str | None = None,
        timeout: float | str | None = None,
        minimal: bool = False,
    ) -> JSON:
        """`minimal`: each result's object is its summary (machine, id, state, version,
        index), as `Prefer: return=minimal` asks: for bulk writes that need no data back."""
        body = {"atomic": atomic, "operations": [dict(op) for op in operations]}
        prefer = {"Prefer": "return=minimal"} if minimal else None
        return await self._keyed_write("POST", "/v1/batch", body, idempotency_key, timeout, prefer)

    async def _keyed_write(
        self, method: str, path: str, body: JSON, key: str | None, timeout: float | str | None,
        headers: Mapping[str, str] | None = None,
    ) -> JSON:
        return await self._call(
            method, path, json_body=body, params=_duration(timeout),
            headers={"Idempotency-Key": key or str(uuid.uuid4()), **(headers or {})},
            attempt_timeout=_attempt_timeout(self.policy, timeout),
        )

    # events and cluster (SPEC 4.7, 4.8)
    async def events(
        self, *, machine: str | None = None, oid: str | None = None, since: int | None = None
    ) -> JSON:
        params = {k: str(v) for k, v in (("machine", machine), ("object", oid), ("since", since)) if v is not None}
        return await self._call("GET", "/v1/events", params=params)

    def watch(
        self,
        *,
        machine: Names = None,
        object: Names = None,  # noqa: A002 - the feed's parameter name
        kind: Names = None,
        since: int | None = None,
        idle_timeout: float = 60.0,
    ) -> Watch:
        """Follow the event feed live (`async for event in client.watch(...)`), failing over
        between nodes without repeating or skipping an event; see `cluster.client.watch`."""
        return Watch(self._transport, machine=machine, object=object, kind=kind, since=since,
                     idle_timeout=idle_timeout)

    async def cluster_status(self, url: str | None = None) -> JSON:
        """`/v1/cluster` from any node, or from exactly the node at `url` (no failover)."""
        if url is None:
            return await self._call("GET", "/v1/cluster")
        return await self._direct("GET", url, "/v1/cluster")

    async def add_member(self, raft: str, http: str | None = None) -> JSON:
        """Add a started node (SPEC 4.8); the answer is the cluster's status."""
        body: JSON = {"raft": raft} if http is None else {"raft": raft, "http": http}
        return await self._call("POST", "/v1/cluster/members", json_body=body)

    async def remove_member(self, raft: str) -> JSON:
        """Remove a member; not retried after an unknown outcome (it would answer not_found)."""
        return await self._call("DELETE", f"/v1/cluster/members/{_seg(raft)}", retry_safe=False)

    async def ready(self, url: str) -> bool:
        """Whether the node at `url` answers `/readyz` with 200 (no failover)."""
        try:
            await self._direct("GET", url, "/readyz")
        except FsmError:
            return False
        return True

    async def _direct(self, method: str, url: str, path: str) -> JSON:
        single = Transport([url], RetryPolicy(deadline=self.policy.attempt_timeout, backoff_max=0.2),
                           self._transport.token, discover=False)
        try:
            return _json(await single.request(method, path))
        finally:
            await single.close()


def _blocking(
    method: Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[Client, P], R]:
    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.run(method(self.aio, *args, **kwargs))

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call


class Client:
    """Blocking client: the same methods as `AsyncClient`, run on a private event loop
    in a background thread (so it works from any thread, and inside async code too)."""

    def __init__(self, urls: str | Sequence[str] | None = None, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fsm-client", daemon=True)
        self._thread.start()
        self.aio: AsyncClient = self.run(self._make(urls, options))

    @staticmethod
    async def _make(urls: str | Sequence[str] | None, options: Mapping[str, Any]) -> AsyncClient:
        return AsyncClient(urls, **options)

    def run(self, coroutine: Awaitable[R]) -> R:
        if self._loop.is_closed():
            raise Unavailable("unavailable", "the client is closed")
        future: Future[R] = asyncio.run_coroutine_threadsafe(_awaited(coroutine), self._loop)
        return future.result()

    @property
    def urls(self) -> list[str]:
        return self.aio.urls

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self.run(self.aio.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> Client:
        return self

    def watch(self, **filters: Any) -> SyncWatch:
        """The blocking `AsyncClient.watch`: `for event in client.watch(object="db-1"): ...`."""
        return SyncWatch(self, self.aio.watch(**filters))

    def __exit__(self, *exc: object) -> None:
        self.close()


    put_machine = _blocking(AsyncClient.put_machine)
    list_machines = _blocking(AsyncClient.list_machines)
    get_machine = _blocking(AsyncClient.get_machine)
    diagram = _blocking(AsyncClient.diagram)
    delete_machine = _blocking(AsyncClient.delete_machine)
    get_object = _blocking(AsyncClient.get_object)
    list_objects = _blocking(AsyncClient.list_objects)
    history = _blocking(AsyncClient.history)
    object_diagram = _blocking(AsyncClient.object_diagram)
    delete_object = _blocking(AsyncClient.delete_object)
    transition = _blocking(AsyncClient.transition)
    vote = _blocking(AsyncClient.vote)
    withdraw = _blocking(AsyncClient.withdraw)
    report_task = _blocking(AsyncClient.report_task)
    retry_tasks = _blocking(AsyncClient.retry_tasks)
    tasks = _blocking(AsyncClient.tasks)
    batch = _blocking(AsyncClient.batch)
    events = _blocking(AsyncClient.events)
    cluster_status = _blocking(AsyncClient.cluster_status)
    ready = _blocking(AsyncClient.ready)
    add_member = _blocking(AsyncClient.add_member)
    remove_member = _blocking(AsyncClient.remove_member)


async def _awaited(awaitable: Awaitable[R]) -> R:
    return await awaitable
