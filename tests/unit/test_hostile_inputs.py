"""Hostile request inputs (issue 17, items 13-15): a clear 4xx, never a 500 or a wrong value."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from cluster.api import inputs
from cluster.api.app import answer_errors
from cluster.api.auth import Identity, TokenTable, auth_middleware
from cluster.api.context import METRICS
from cluster.api.errors import ApiError
from cluster.api.metrics import Metrics
from cluster.client import InvalidRequest
from cluster.client.clients import _seg


def request(path: str = "/", headers: dict[str, str] | None = None) -> Any:
    return make_mocked_request("GET", path, headers=headers or {})


@pytest.mark.parametrize("value", [".", ".."])
def test_dot_segments_are_invalid_ids(value: str) -> None:
    with pytest.raises(ApiError) as info:
        inputs.check_id(value, "id")
    assert (info.value.code, info.value.status) == ("invalid_id", 400)


@pytest.mark.parametrize("value", ["...", ".a", "a.", "a..b"])
def test_other_ids_with_dots_stay_valid(value: str) -> None:
    assert inputs.check_id(value) == value


@pytest.mark.parametrize("value", [".", ".."])
def test_the_client_refuses_dot_segments_before_sending(value: str) -> None:
    # yarl would rewrite /objects/. to /objects/ and /objects/.. to the parent path
    with pytest.raises(InvalidRequest) as info:
        _seg(value)
    assert info.value.code == "invalid_id"


@pytest.mark.parametrize("tag", ['"²"', '"١"', '"①"', "9" * 5000, '"1e3"', '"-1"', '""', '" 3"'])
def test_if_match_takes_ascii_digits_only(tag: str) -> None:
    with pytest.raises(ApiError) as info:
        inputs.expected_version(request(headers={"If-Match": tag}), {})
    assert info.value.code == "invalid_request"
    assert len(info.value.message) < 200  # a 5,000-digit value is not echoed back whole


def test_expected_version_in_the_body_is_bounded() -> None:
    with pytest.raises(ApiError) as info:
        inputs.expected_version(request(), {"expected_version": 2**64})
    assert info.value.code == "invalid_request"


@pytest.mark.parametrize("raw", ["①", "²", "١", "9" * 5000, "0", "1001", "+5"])
def test_limit_takes_ascii_digits_in_range(raw: str) -> None:
    with pytest.raises(ApiError) as info:
        inputs.limit(_query("limit", raw))
    assert info.value.code == "invalid_request"


@pytest.mark.parametrize("raw", ["١s", "٥٠٠ms", "1" * 5000 + "ms"])
def test_timeout_takes_ascii_digits_only(raw: str) -> None:
    from cluster.config import Settings

    settings = Settings(raft="127.0.0.1:7001", http="127.0.0.1:8001", data_dir="/tmp/x")  # type: ignore[arg-type]
    with pytest.raises(ApiError) as info:
        inputs.timeout(_query("timeout", raw), settings)
    assert info.value.code == "invalid_request"


def _query(name: str, raw: str) -> Any:
    from urllib.parse import quote

    return make_mocked_request("GET", f"/?{name}={quote(raw)}")


async def _raw_request(port: int, header: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /v1/machines HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + header + b"\r\n\r\n")
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


@pytest.mark.parametrize(
    "header", [b"Authorization: Bearer \xff\xfe\xfd-not-utf8-at-all", b"Authorization: \xc3\x28 abc"]
)
def test_a_non_utf8_authorization_header_is_unauthorized_not_500(header: bytes) -> None:
    async def main() -> bytes:
        table = TokenTable({"t" * 32: Identity("alice", "admin")})
        app = web.Application(middlewares=[answer_errors, auth_middleware(table)])
        app[METRICS] = Metrics(None)  # type: ignore[arg-type]  # observe() needs no node
        app.router.add_get("/v1/machines", lambda r: web.json_response({"machines": []}))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            return await _raw_request(port, header)
        finally:
            await runner.cleanup()

    answer = asyncio.run(main())
    status_line = answer.split(b"\r\n", 1)[0]
    assert b" 401 " in status_line, answer[:300]
    assert b'"unauthorized"' in answer


@pytest.mark.parametrize("port", ["①", "²", "١", "9" * 5000])
def test_addresses_take_ascii_port_numbers_only(port: str) -> None:
    from cluster.config import SettingsError, parse_address

    with pytest.raises(SettingsError):
        parse_address(f"127.0.0.1:{port}", "--http")
