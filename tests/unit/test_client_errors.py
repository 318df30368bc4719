"""The client's error mapping (SPEC 4.9 body -> typed exception) and its failover rules,
against small aiohttp servers on 127.0.0.1 that answer as a node would."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from cluster.client import AsyncClient, Client, RetryPolicy, errors, normalize_urls
from cluster.client.errors import error_from_body


def body(code: str, message: str = "m", details: list[dict[str, object]] | None = None) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "details": details or []}})


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "invalid_request", errors.InvalidRequest),
        (400, "invalid_id", errors.InvalidRequest),
        (400, "invalid_schema", errors.InvalidSchema),
        (401, "unauthorized", errors.Unauthorized),
        (403, "not_a_voter", errors.NotAVoter),
        (404, "machine_not_found", errors.MachineNotFound),
        (404, "object_not_found", errors.ObjectNotFound),
        (404, "transition_not_found", errors.TransitionNotFound),
        (409, "transition_not_allowed", errors.TransitionNotAllowed),
        (409, "object_exists", errors.ObjectExists),
        (409, "pending_change", errors.PendingChange),
        (409, "vote_conflict", errors.VoteConflict),
        (409, "stale_change", errors.StaleChange),
        (409, "machine_in_use", errors.MachineInUse),
        (410, "gone", errors.Gone),
        (412, "version_conflict", errors.VersionConflict),
        (413, "payload_too_large", errors.PayloadTooLarge),
        (422, "guard_failed", errors.GuardFailed),
        (422, "idempotency_key_reused", errors.IdempotencyKeyReused),
        (429, "overloaded", errors.Overloaded),
        (503, "unavailable", errors.Unavailable),
        (504, "timeout", errors.Timeout),
    ],
)
def test_each_error_code_maps_to_its_class(status: int, code: str, cls: type[errors.FsmError]) -> None:
    error = error_from_body(status, body(code, "what went wrong"))
    assert type(error) is cls
    assert isinstance(error, errors.FsmError)
    assert (error.code, error.message, error.status) == (code, "what went wrong", status)


def test_families_share_a_parent_class() -> None:
    assert isinstance(error_from_body(404, body("object_not_found")), errors.NotFound)
    assert isinstance(error_from_body(409, body("terminal_state")), errors.Conflict)
    assert isinstance(error_from_body(403, body("not_a_voter")), errors.Forbidden)
    assert isinstance(error_from_body(400, body("invalid_schema")), errors.InvalidRequest)


def test_unknown_code_falls_back_to_its_status_family() -> None:
    error = error_from_body(409, body("something_new"))
    assert type(error) is errors.Conflict and error.code == "something_new"
    assert type(error_from_body(500, body("internal"))) is errors.ServerError
    assert type(error_from_body(418, body("teapot"))) is errors.FsmError


def test_details_are_kept_and_version_conflict_names_both_versions() -> None:
    error = error_from_body(412, body("version_conflict", details=[{"expected": 3, "actual": 5}]))
    assert isinstance(error, errors.VersionConflict)
    assert (error.expected, error.actual) == (3, 5)
    guard = error_from_body(422, body("guard_failed", details=[{"path": "owner", "rule": "regex", "message": "x"}]))
    assert guard.details == [{"path": "owner", "rule": "regex", "message": "x"}]
    refused = error_from_body(409, body("transition_not_allowed", details=[{"state": "free", "allowed": ["acquire"]}]))
    assert isinstance(refused, errors.TransitionNotAllowed) and refused.state == "free"


def test_a_body_that_is_not_an_error_document_is_named_by_its_status() -> None:
    html = error_from_body(502, b"<html>Bad Gateway</html>")
    assert type(html) is errors.ServerError and html.code == "http_502" and "Bad Gateway" in html.message
    empty = error_from_body(503, b"")
    assert type(empty) is errors.Unavailable and empty.code == "http_503"


def test_retry_after_is_parsed_as_seconds() -> None:
    assert errors.parse_retry_after("2") == 2.0
    assert errors.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert errors.parse_retry_after(None) is None


def test_urls_are_normalized_from_lists_and_comma_separated_text() -> None:
    assert normalize_urls("127.0.0.1:1, http://127.0.0.1:2/,") == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    assert normalize_urls(None) == ["http://127.0.0.1:8101"]


# ---- failover against real local servers ------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeNode:
    """A server whose answers are scripted: each request pops the next handler (the last repeats)."""

    def __init__(self, *script: Handler) -> None:
        self.script = list(script)
        self.requests: list[web.Request] = []
        self.keys: list[str | None] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.server = TestServer(app, host="127.0.0.1")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        self.keys.append(request.headers.get("Idempotency-Key"))
        handler = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return await handler(request)

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


def answer(status: int, payload: object, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(payload, status=status, headers=headers)

    return handler


def error(status: int, code: str, retry_after: str | None = None) -> Handler:
    headers = {"Retry-After": retry_after} if retry_after else None
    return answer(status, orjson.loads(body(code)), headers)


def hang(seconds: float) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.json_response({})

    return handler


OK = answer(200, {"object": {"version": 1}, "event": {}})


@pytest.fixture
async def nodes() -> AsyncIterator[Callable[..., Awaitable[FakeNode]]]:
    started: list[FakeNode] = []

    async def start(*script: Handler) -> FakeNode:
        node = FakeNode(*script)
        await node.server.start_server()
        started.append(node)
        return node

    yield start
    for node in started:
        await node.server.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def fast(**overrides: float) -> RetryPolicy:
    values = {"deadline": 5.0, "attempt_timeout": 2.0, "backoff_initial": 0.01, "backoff_max": 0.05,
              "retry_after_max": 0.05}
    values.update(overrides)
    return RetryPolicy(**values)


async def test_unavailable_node_fails_over_to_the_next_and_stays_there(nodes) -> None:
    a = await nodes(error(503, "unavailable", "1"))
    b = await nodes(OK)
    async with AsyncClient([a.url, b.url], discover=False, policy=fast()) as fsm:
        assert (await fsm.get_object("m", "x"))["object"]["version"] == 1
        await fsm.get_object("m", "y")
    assert len(a.requests) == 1 and len(b.requests) == 2


async def test_refused_connection_moves_on_to_the_next_node(nodes) -> None:
    b = await nodes(OK)
    async with AsyncClient([closed_port_url(), b.url], discover=False, policy=fast()) as fsm:
        await fsm.transition("m", "x", "go")
    assert len(b.requests) == 1


async def test_one_node_answering_503_then_200_is_retried_after_a_bounded_pause(nodes) -> None:
    a = await nodes(error(503, "unavailable", "30"), error(503, "unavailable", "30"), OK)
    async with AsyncClient([a.url], discover=False, policy=fast(retry_after_max=0.2)) as fsm:
        started = time.monotonic()
        await fsm.list_machines()
        elapsed = time.monotonic() - started
    assert len(a.requests) == 3
    assert 0.3 <= elapsed < 2.0  # Retry-After: 30 honoured only up to retry_after_max


async def test_every_node_unavailable_raises_unavailable_at_the_deadline(nodes) -> None:
    a = await nodes(error(503, "unavailable", "1"))
    b = await nodes(error(503, "unavailable", "1"))
    async with AsyncClient([a.url, b.url], discover=False, policy=fast(deadline=0.6)) as fsm:
        started = time.monotonic()
        with pytest.raises(errors.Unavailable) as caught:
            await fsm.get_object("m", "x")
    assert 0.5 <= time.monotonic() - started < 2.0
    assert caught.value.status == 503 and caught.value.retry_after == 1.0


async def test_a_504_transition_is_retried_with_the_same_idempotency_key(nodes) -> None:
    a = await nodes(error(504, "timeout"))
    b = await nodes(OK)
    async with AsyncClient([a.url, b.url], discover=False, policy=fast()) as fsm:
        await fsm.transition("m", "x", "go", {"n": 1})
    assert a.keys[0] is not None and a.keys == b.keys


async def test_each_transition_call_gets_its_own_key_unless_one_is_given(nodes) -> None:
    a = await nodes(OK)
    async with AsyncClient([a.url], discover=False, policy=fast()) as fsm:
        await fsm.transition("m", "x", "go")
        await fsm.transition("m", "x", "go")
        await fsm.transition("m", "x", "go", idempotency_key="k-1")
    assert len(set(a.keys)) == 3 and a.keys[2] == "k-1"


async def test_a_request_without_a_key_is_not_resent_after_an_unknown_outcome(nodes) -> None:
    a = await nodes(error(504, "timeout"))
    b = await nodes(OK)
    async with AsyncClient([a.url, b.url], discover=False, policy=fast()) as fsm:
        with pytest.raises(errors.Timeout):
            await fsm.delete_object("m", "x")
    assert len(a.requests) == 1 and not b.requests


async def test_a_write_whose_first_attempt_got_no_answer_ends_in_timeout_not_unavailable(nodes) -> None:
    a = await nodes(hang(3.0))
    b = await nodes(error(503, "unavailable", "1"))
    async with AsyncClient([a.url, b.url], discover=False, policy=fast(attempt_timeout=0.2, deadline=0.8)) as fsm:
        with pytest.raises(errors.Timeout, match="outcome is unknown"):
            await fsm.transition("m", "x", "go")
        with pytest.raises(errors.Unavailable):  # a read that got no answer changed nothing
            await fsm.get_object("m", "x")


async def test_business_errors_are_raised_at_once_without_failover(nodes) -> None:
    a = await nodes(error(409, "transition_not_allowed"))
    b = await nodes(OK)
    async with AsyncClient([a.url, b.url], discover=False, policy=fast()) as fsm:
        with pytest.raises(errors.TransitionNotAllowed):
            await fsm.transition("m", "x", "go")
    assert len(a.requests) == 1 and not b.requests


async def test_a_frozen_node_costs_one_attempt_timeout_then_is_tried_last(nodes) -> None:
    a = await nodes(hang(3.0))
    b = await nodes(OK)
    async with AsyncClient([a.url, b.url], discover=False, policy=fast(attempt_timeout=0.3)) as fsm:
        started = time.monotonic()
        await fsm.transition("m", "x", "go")
        await fsm.transition("m", "y", "go")
        elapsed = time.monotonic() - started
    assert len(a.requests) == 1 and len(b.requests) == 2
    assert elapsed < 1.5
    assert a.keys[0] == b.keys[0]  # the resend after no answer carried the same key


async def test_the_blocking_client_runs_the_same_calls(nodes) -> None:
    a = await nodes(answer(200, {"machines": []}))

    def use() -> dict[str, object]:
        with Client([a.url], discover=False, policy=fast()) as fsm:
            return fsm.list_machines()

    assert await asyncio.to_thread(use) == {"machines": []}


async def test_blocking_client_raises_typed_errors(nodes) -> None:
    a = await nodes(error(404, "object_not_found"))

    def use() -> None:
        with Client(a.url, discover=False, policy=fast()) as fsm:
            fsm.get_object("m", "x")

    with pytest.raises(errors.ObjectNotFound):
        await asyncio.to_thread(use)
