"""Request checks of the HTTP layer: ids, durations, If-Match, limits."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from cluster.api import inputs
from cluster.api.errors import ApiError
from cluster.config import Settings


def settings() -> Settings:
    return Settings(raft="127.0.0.1:7001", http="127.0.0.1:8001", data_dir="/tmp/x")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["a", "db-1", "A.b_c~d:e@f-g", "x" * 200, "0", "user@example.com"])
def test_valid_ids(value: str) -> None:
    assert inputs.check_id(value) == value


@pytest.mark.parametrize("value", ["", "x" * 201, "a b", "a/b", "é", "a#b", "a?b", "a%20b", "a\nb"])
def test_invalid_ids_are_refused_with_invalid_id(value: str) -> None:
    with pytest.raises(ApiError) as info:
        inputs.check_id(value)
    assert info.value.code == "invalid_id"
    assert info.value.status == 400


def request(path: str = "/", headers: dict[str, str] | None = None) -> Any:
    return make_mocked_request("GET", path, headers=headers or {})


@pytest.mark.parametrize(
    ("raw", "seconds"), [("5s", 5.0), ("500ms", 0.5), ("1m", 60.0), ("2", 2.0), ("0.25s", 0.25)]
)
def test_timeout_durations(raw: str, seconds: float) -> None:
    assert inputs.timeout(request(f"/?timeout={raw}"), settings()) == pytest.approx(seconds)


@pytest.mark.parametrize("raw", ["0s", "abc", "-1s", "5h", "61s"])
def test_bad_timeouts_are_invalid_requests(raw: str) -> None:
    with pytest.raises(ApiError) as info:
        inputs.timeout(request(f"/?timeout={raw}"), settings())
    assert info.value.code == "invalid_request"


def test_default_timeout_is_five_seconds() -> None:
    assert inputs.timeout(request(), settings()) == 5.0


@pytest.mark.parametrize(("header", "version"), [('"3"', 3), ("3", 3), ('W/"7"', 7)])
def test_if_match_gives_the_expected_version(header: str, version: int) -> None:
    assert inputs.expected_version(request(headers={"If-Match": header}), {}) == version


def test_if_match_and_body_must_agree() -> None:
    with pytest.raises(ApiError) as info:
        inputs.expected_version(request(headers={"If-Match": '"3"'}), {"expected_version": 4})
    assert info.value.code == "invalid_request"
    same = inputs.expected_version(request(headers={"If-Match": '"4"'}), {"expected_version": 4})
    assert same == 4


@pytest.mark.parametrize("bad", [-1, "3", 1.5, True])
def test_expected_version_must_be_a_non_negative_integer(bad: object) -> None:
    with pytest.raises(ApiError):
        inputs.expected_version(request(), {"expected_version": bad})


def test_data_larger_than_the_limit_is_payload_too_large() -> None:
    body = {"data": {"blob": "x" * (64 * 1024)}}
    with pytest.raises(ApiError) as info:
        inputs.optional_data(body, settings())
    assert info.value.code == "payload_too_large"
    assert info.value.status == 413


def test_data_must_be_an_object() -> None:
    with pytest.raises(ApiError) as info:
        inputs.optional_data({"data": [1, 2]}, settings())
    assert "must be a JSON object, not an array" in info.value.message


@pytest.mark.parametrize("raw", ["0", "1001", "x", "-5"])
def test_limit_bounds(raw: str) -> None:
    with pytest.raises(ApiError):
        inputs.limit(request(f"/?limit={raw}"))
    assert inputs.limit(request("/?limit=1000")) == 1000


@pytest.mark.parametrize(
    ("prefer", "minimal"),
    [
        ("return=minimal", True),
        ('respond-async, Return = "Minimal"', True),
        ("return=minimal; foo=bar", True),
        ("return=representation", False),
        ("handling=lenient", False),
        ("minimal", False),
        (None, False),
    ],
)
def test_prefer_return_minimal(prefer: str | None, minimal: bool) -> None:
    """RFC 7240: names and values are case-insensitive, a value may be quoted, parameters
    and unknown preferences are ignored."""
    assert inputs.prefers_minimal(request("/", {"Prefer": prefer} if prefer else None)) is minimal
