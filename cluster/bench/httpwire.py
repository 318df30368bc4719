"""A minimal keep-alive HTTP/1.1 client connection for the load generator.

aiohttp's client costs tens of microseconds of Python per request; on a 2-core
box that is CPU the servers under test do not get. This protocol sends
pre-encoded requests and parses only the status line, `Content-Length` and
chunked bodies: enough for aiohttp servers and etcd's JSON gateway.
"""

from __future__ import annotations

import asyncio
from typing import Any


class ProtocolError(Exception):
    """The server answered something this small parser does not understand."""


def encode_request(method: str, path: str, body: bytes | None = None,
                   headers: dict[str, str] | None = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    if body is None:
        return (head + "\r\n").encode()
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


class HttpConnection(asyncio.Protocol):
    """One connection, one request at a time (closed loop)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._transport: asyncio.Transport | None = None
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, host, port)
        return protocol

    def connection_made(self, transport: Any) -> None:
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is None or self._waiter.done():
            return
        try:
            parsed = self._parse()
        except ProtocolError as exc:
            self._waiter.set_exception(exc)
            return
        if parsed is not None:
            self._waiter.set_result(parsed)

    async def request(self, raw: bytes, timeout: float) -> tuple[int, bytes]:
        if self.closed or self._transport is None:
            raise ConnectionError("connection is closed")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(timeout, _expire, waiter)
        self._transport.write(raw)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _parse(self) -> tuple[int, bytes] | None:
        buf = self._buffer
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buf[:end]).lower()
        try:
            status = int(head[9:12])
        except ValueError:
            raise ProtocolError(f"bad status line {head[:40]!r}") from None
        start = end + 4
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop > 0 else len(head)])
            if len(buf) < start + length:
                return None
            body = bytes(buf[start : start + length])
            del buf[: start + length]
            return status, body
        if b"transfer-encoding: chunked" in head:
            return self._parse_chunked(status, start)
        raise ProtocolError("response has neither Content-Length nor chunked encoding")

    def _parse_chunked(self, status: int, start: int) -> tuple[int, bytes] | None:
        buf = self._buffer
        body = bytearray()
        pos = start
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
            if len(buf) < line_end + 2 + size + 2:
                return None
            body += buf[line_end + 2 : line_end + 2 + size]
            pos = line_end + 2 + size + 2
            if size == 0:
                del buf[:pos]
                return status, bytes(body)


def _expire(waiter: asyncio.Future[tuple[int, bytes]]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("request timed out"))
