"""Node logging: text or JSON lines, and the request id that ties a request's lines together.

`--log-format json` writes one JSON object per line: `ts`, `level`, `logger`,
`msg`, the `request_id` of the HTTP request being handled (when there is one),
any `extra` fields, and `exc` for a traceback. The request id comes from the
client's `X-Request-Id` header (or is made up), is stored in the Raft entry the
request proposes (so every node that applies it can name it) and is answered in
the response's `X-Request-Id` header.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
import uuid
from typing import Any

import orjson

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_PREFIX = uuid.uuid4().hex[:12] + "-"
_counter = 0

# LogRecord attributes that are not `extra` fields
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def request_id_from(header: str | None) -> str:
    """The client's id when it is a short token, else a new one (unique per process)."""
    if header and _VALID_ID.fullmatch(header):
        return header
    global _counter
    _counter += 1
    return f"{_PREFIX}{_counter:x}"


class RequestIdFilter(logging.Filter):
    """Adds the current request's id (asyncio context) to records that have none."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            rid = REQUEST_ID.get()
            if rid is not None:
                record.request_id = rid
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        rid = getattr(record, "request_id", None)
        return f"{text} [request {rid}]" if rid else text


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, str(level).upper(), logging.INFO))
