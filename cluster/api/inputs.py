"""Reading and checking what a request carries: ids, JSON bodies, query parameters, headers.

Every check raises `ApiError` with a message that says what was wrong and what
would be right, before anything is proposed to the cluster.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from aiohttp import web

from cluster.config import Settings
from cluster.core.limits import value_problem
from schema_lang.limits import MAX_INT, MIN_INT

from .errors import ApiError

ID_PATTERN = re.compile(r"[A-Za-z0-9._~:@-]{1,200}")
DOT_SEGMENTS = frozenset({".", ".."})  # HTTP clients rewrite these out of a path
_DIGITS = re.compile(r"[0-9]{1,18}")  # ASCII only: str.isdigit() also takes '²', '١', '①'
_DURATION = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,9})?)(ms|s|m)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}
MAX_LIMIT = 1000
# an integer literal of 20+ digits may be past 64 bits, which orjson reads as a float.
# Found as twenty "0"s once every ASCII digit is mapped to "0": a C scan of the body, where
# the regex \d{20} tried a match at every digit (~30x slower on a batch of 100 operations).
_ZERO_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 20
MAX_VERSION = 2**63 - 1


def check_id(value: str, what: str = "id") -> str:
    if value in DOT_SEGMENTS:
        raise ApiError(
            "invalid_id",
            f"{what} {value!r} is not valid: '.' and '..' are path segments HTTP clients "
            "rewrite away; use another name",
            [{"path": what, "message": "must not be '.' or '..'"}],
        )
    if not ID_PATTERN.fullmatch(value):
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise ApiError(
            "invalid_id",
            f"{what} {shown!r} is not valid: use 1-200 characters of A-Z a-z 0-9 . _ ~ : @ -",
            [{"path": what, "message": "must match [A-Za-z0-9._~:@-]{1,200}"}],
        )
    return value


# check_id's rule for many names at once, each followed by "\n" (which no valid id holds):
# one regex call for a whole batch, where a call per id was most of a batch's checks
_IDS = re.compile(
    rf"(?:(?!(?:{'|'.join(map(re.escape, sorted(DOT_SEGMENTS)))})\n)(?:{ID_PATTERN.pattern})\n)*")


def all_valid_ids(names: list[str]) -> bool:
    """Whether `check_id` takes every one of `names` (it words the refusal of one that is not).

    Counting the "\n"s first: "a\nb" is no id, but would read as two."""
    text = "\n".join(names) + "\n"
    return text.count("\n") == len(names) and _IDS.fullmatch(text) is not None


def path_id(request: web.Request, key: str, what: str | None = None) -> str:
    return check_id(request.match_info[key], what or key)


async def read_body(request: web.Request, limit: int, what: str = "request body") -> bytes:
    """The raw body, refused with 413 when larger than `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(what, request.content_length, limit)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large(what, None, limit) from None
    if len(body) > limit:
        raise too_large(what, len(body), limit)
    return body


def too_large(what: str, size: int | None, limit: int) -> ApiError:
    got = f" ({size} bytes)" if size is not None else ""
    return ApiError("payload_too_large", f"{what} is too large{got}: the limit is {limit} bytes")


async def read_json(request: web.Request, settings: Settings, *, required: bool = True) -> dict[str, Any]:
    """The JSON object in the body; an empty body is `{}` when not required."""
    body = await read_body(request, settings.max_body_bytes)
    if not body.strip():
        if required:
            raise ApiError("invalid_request", "the request body is empty: send a JSON object")
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError("invalid_request", f"the request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(
            "invalid_request", f"the request body must be a JSON object, not {json_type(value)}"
        )
    if _LONG_RUN in body.translate(_ZERO_DIGITS):
        check_integer_literals(body)
    return value


def check_integer_literals(body: bytes) -> None:
    """Refuses integers past ±2^63, which a JSON parser would silently turn into floats.

    Run only when the body has a run of 20 digits (rare): the stdlib parser hands
    each integer literal over as text, so nothing is converted before it is checked.
    """

    def integer(text: str) -> int:
        if len(text.lstrip("-")) > 19 or not MIN_INT <= int(text) <= MAX_INT:
            shown = text if len(text) <= 30 else text[:27] + "..."
            raise ApiError(
                "invalid_request",
                f"the request body holds the integer {shown}, beyond the integer limit of ±2^63;"
                " send it as a string",
            )
        return 0

    try:
        json.loads(body, parse_int=integer)
    except RecursionError:
        raise ApiError("invalid_request", "the request body is nested too deeply") from None


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def check_fields(body: dict[str, Any], allowed: set[str], where: str = "body") -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(
            "invalid_request",
            f"unknown field(s) in the {where}: {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})",
        )


def optional_data(body: dict[str, Any], settings: Settings, key: str = "data") -> dict[str, Any] | None:
    return checked_data(body.get(key), settings, key)


def checked_data(data: Any, settings: Settings, key: str = "data") -> dict[str, Any] | None:
    """The `key` a body holds (None when null or absent), refused when not an object or
    past the data limits (nesting, integer range, `settings.max_data_bytes`)."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ApiError("invalid_request", f"'{key}' must be a JSON object, not {json_type(data)}")
    problem = value_problem(data)
    if problem is not None:
        raise ApiError("invalid_request", f"'{key}' {problem}")
    size = len(orjson.dumps(data))
    if size > settings.max_data_bytes:
        raise too_large(f"'{key}'", size, settings.max_data_bytes)
    return data


def optional_version(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VERSION:
        raise ApiError(
            "invalid_request",
            f"{what} must be an integer from 0 to {MAX_VERSION}, got {shown(repr(value))}",
        )
    return value


def expected_version(request: web.Request, body: dict[str, Any]) -> int | None:
    """`expected_version` from the body or an `If-Match: "3"` header (they must agree)."""
    from_body = optional_version(body.get("expected_version"), "expected_version")
    header = request.headers.get("If-Match")
    from_header = None
    if header is not None:
        tag = header.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        tag = tag.strip('"')
        if not _DIGITS.fullmatch(tag):
            raise ApiError(
                "invalid_request",
                f'If-Match must be an object version such as "3" (ASCII digits, at most 18), '
                f"got {shown(header)}",
            )
        from_header = int(tag)
    if from_body is not None and from_header is not None and from_body != from_header:
        raise ApiError(
            "invalid_request",
            f"If-Match ({from_header}) and expected_version ({from_body}) disagree; send one",
        )
    return from_body if from_body is not None else from_header


def idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise ApiError("invalid_request", "Idempotency-Key must be 1-255 printable characters")
    return key


def prefers_minimal(request: web.Request) -> bool:
    """Whether the request's `Prefer` headers (RFC 7240) ask for `return=minimal`: a write
    then answers with each object's summary. Unknown preferences are ignored, as the RFC
    has it; names and values are case-insensitive, a value may be quoted."""
    for header in request.headers.getall("Prefer", ()):
        for preference in header.split(","):
            name, _, value = preference.split(";", 1)[0].partition("=")
            if name.strip().lower() == "return" and value.strip().strip('"').lower() == "minimal":
                return True
    return False


def timeout(request: web.Request, settings: Settings) -> float:
    raw = request.query.get("timeout")
    if raw is None:
        return settings.request_timeout
    match = _DURATION.fullmatch(raw.strip())
    if not match:
        raise ApiError(
            "invalid_request", f"timeout {shown(raw)} is not a duration such as 500ms, 5s or 1m"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds <= settings.max_request_timeout:
        raise ApiError(
            "invalid_request",
            f"timeout must be above 0 and at most {settings.max_request_timeout:g}s, got {raw}",
        )
    return seconds


def limit(request: web.Request, default: int = 100) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(
            "invalid_request", f"limit must be an integer from 1 to {MAX_LIMIT}, got {shown(raw)}"
        )
    return int(raw)


def shown(value: str, room: int = 60) -> str:
    """A caller's value quoted for an error message, cut to `room` characters."""
    text = repr(value)
    return text if len(text) <= room else text[: room - 3] + "..."


def consistency(request: web.Request) -> str:
    value = request.query.get("consistency", "linearizable")
    if value not in ("linearizable", "stale"):
        raise ApiError(
            "invalid_request", f"consistency must be 'linearizable' or 'stale', got {value!r}"
        )
    return value


def choice(request: web.Request, name: str, options: tuple[str, ...], default: str | None) -> str | None:
    value = request.query.get(name, default)
    if value is not None and value not in options:
        raise ApiError("invalid_request", f"{name} must be one of {', '.join(options)}, got {value!r}")
    return value
