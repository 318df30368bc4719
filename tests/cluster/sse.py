"""A raw Server-Sent Events reader for tests: one node, no failover, no de-duplication.

    reader = SseReader(url, "/v1/events?machine=m", last_event_id=None)  # starts reading
    reader.wait_for_id(120)         # until a message with `id: 120` arrived (bounded)
    reader.messages                 # [(event, data bytes, id or None), ...] in arrival order
    reader.events()                 # the JSON of every `message` event
    reader.close()

It reads on a thread of its own through a plain socket, so a test can also leave
it unread (`paused=True`) to play a slow consumer, with a small receive buffer.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from cluster.client.watch import SseParser


class SseReader:
    def __init__(
        self, url: str, path: str, last_event_id: int | None = None, *, paused: bool = False,
        rcvbuf: int | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
        head = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: text/event-stream\r\n"
        if last_event_id is not None:
            head += f"Last-Event-ID: {last_event_id}\r\n"
        self.sock.sendall((head + "\r\n").encode())
        self.messages: list[tuple[str, bytes, str | None]] = []
        self.status: int | None = None
        self.ended = False
        self._resume = threading.Event()
        if not paused:
            self._resume.set()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def resume(self) -> None:
        self._resume.set()

    def _run(self) -> None:
        parser, head, body = SseParser(), b"", b""
        chunked = _Dechunker()
        try:
            self._resume.wait()
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                if self.status is None:
                    head += data
                    if b"\r\n\r\n" not in head:
                        continue
                    head, _, data = head.partition(b"\r\n\r\n")
                    self.status = int(head.split(b" ")[1])
                body = chunked.feed(data)
                with self._changed:
                    self.messages.extend(parser.feed(body))
                    self._changed.notify_all()
                if chunked.done:  # the server ended the response (the connection may stay)
                    break
        except OSError:
            pass
        finally:
            with self._changed:
                self.ended = True
                self._changed.notify_all()

    def wait_until(self, check: Any, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not check():
                left = deadline - time.monotonic()
                assert left > 0, f"SSE reader: condition not met in {timeout}s; {len(self.messages)} messages"
                self._changed.wait(left)

    def wait_for_id(self, index: int, timeout: float = 30.0) -> None:
        self.wait_until(lambda: any(m[2] is not None and int(m[2]) >= index for m in self.messages), timeout)

    def wait_ended(self, timeout: float = 30.0) -> None:
        self.wait_until(lambda: self.ended, timeout)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(data) for kind, data, _ in list(self.messages) if kind == "message" and data]

    def close(self) -> None:
        self._resume.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)


class _Dechunker:
    """HTTP/1.1 chunked transfer decoding, incremental."""

    def __init__(self) -> None:
        self._buffer = b""
        self._left = 0  # bytes of the current chunk's data still to come
        self._skip = 0  # bytes of the CRLF after it still to come
        self.done = False

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = bytearray()
        while not self.done:
            if self._left > 0:
                take = self._buffer[: self._left]
                out += take
                self._buffer = self._buffer[len(take):]
                self._left -= len(take)
                if self._left > 0:
                    break
                self._skip = 2
            if self._skip > 0:
                n = min(self._skip, len(self._buffer))
                self._buffer, self._skip = self._buffer[n:], self._skip - n
                if self._skip > 0:
                    break
            line, sep, rest = self._buffer.partition(b"\r\n")
            if not sep:
                break
            size = int(line.split(b";")[0], 16)
            self._buffer = rest
            if size == 0:
                self.done = True
            self._left = size
        return bytes(out)
