"""A batch's operations: what each becomes, and how a bad one refuses the whole batch
(`routes.batch.operations`; the request body's 64-bit integer check below); its typed
path gives what checking the operations one by one gives."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cluster.api.errors import ApiError
from cluster.api.routes.batch import operation, operations
from cluster.config import Settings
from cluster.core.entries import Transition
from tests.fuzz.test_hostile_fuzz import payload_value, payloads
from tests.unit.test_entry_decode import typed


def settings() -> Settings:
    return Settings(raft="127.0.0.1:7001", http="127.0.0.1:8001", data_dir="/tmp/x",  # type: ignore[arg-type]
                    max_data_bytes=200)


def op(**fields: Any) -> dict[str, Any]:
    return {"machine": "kv", "id": "k1", "transition": "put", **fields}


DEEP: Any = []
for _ in range(70):
    DEEP = [DEEP]

ACCEPTED = [
    op(),
    op(data={"value": "x"}),
    op(data={"n": 2**63 - 1, "b": True, "z": None, "f": 1.5}),
    op(data={"nested": {"a": [1, 2, {"b": "c"}]}}),
    op(expected_version=0),
    op(expected_version=2**63 - 1, data=None),
    op(id="A.b_c~d:e@f-g", machine="m-1", transition="t.2"),
    op(id="x" * 200),
]

REFUSED = [
    "not an object",
    ["a", "list"],
    op(extra=1),
    {"machine": "kv", "id": "k1"},
    op(id="."),
    op(id=".."),
    op(machine=".."),
    op(transition="."),
    op(id=""),
    op(id="x" * 201),
    op(id="a b"),
    op(id="é"),
    op(machine="a/b"),
    op(transition="a\nb"),
    op(id=7),
    op(machine=None),
    op(data=[]),
    op(data="text"),
    op(data={"v": "x" * 300}),  # over max_data_bytes (200)
    op(data={"big": 2**63}),
    op(data={"deep": DEEP}),  # nested past the limit, small enough in bytes
    op(expected_version=-1),
    op(expected_version=2**63),
    op(expected_version=True),
    op(expected_version=1.0),
    op(expected_version="3"),
]


@pytest.mark.parametrize("raw", ACCEPTED)
def test_accepted_operations_become_their_transitions(raw: dict[str, Any]) -> None:
    raw = orjson.loads(orjson.dumps(raw))  # as a request body decodes
    expected = Transition(raw["machine"], raw["id"], raw["transition"], raw.get("data"),
                          raw.get("expected_version"))
    assert operations([raw, raw], settings()) == (expected, expected)


@pytest.mark.parametrize("raw", REFUSED)
def test_a_refused_operation_refuses_the_batch_naming_its_position(raw: Any) -> None:
    raw = orjson.loads(orjson.dumps(raw))
    with pytest.raises(ApiError) as got:
        operations([op(), raw, op()], settings())
    assert got.value.code in {"invalid_request", "invalid_id", "payload_too_large"}, got.value.code
    assert got.value.message.startswith("operation 1:")
    assert got.value.details == [{"operation": 1, "message": got.value.message.removeprefix("operation 1: ")}]


def test_the_first_bad_operation_is_the_one_named() -> None:
    with pytest.raises(ApiError) as got:
        operations([op(), op(id="."), op(id="a b")], settings())
    assert got.value.message.startswith("operation 1:")


class _Body:
    """What `inputs.read_json` reads of a request: its length and its bytes."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.content_length = len(body)

    async def read(self) -> bytes:
        return self.body


def read_json(body: bytes) -> dict[str, Any]:
    import asyncio

    from cluster.api import inputs

    return asyncio.run(inputs.read_json(_Body(body), settings()))  # type: ignore[arg-type]


@pytest.mark.parametrize("literal", ["18446744073709551616", "-99999999999999999999", "1" + "0" * 30])
def test_integer_literals_past_64_bits_are_still_refused(literal: str) -> None:
    with pytest.raises(ApiError) as got:
        read_json(b'{"operations": [{"machine": "kv", "id": "k", "transition": "t", "data": {"n": '
                  + literal.encode() + b"}}]}")
    assert "beyond the integer limit" in got.value.message


def test_long_digit_runs_that_are_not_big_integers_pass() -> None:
    body = b'{"v": "' + b"1234567890" * 5 + b'", "n": 9223372036854775807, "m": -9223372036854775808}'
    assert read_json(body)["n"] == 2**63 - 1


def one_by_one(raw_ops: list[Any]) -> Any:
    """What `operations` gave before its typed path: each operation checked in turn."""
    try:
        return typed(tuple(operation(position, raw, settings()) for position, raw in enumerate(raw_ops)))
    except ApiError as exc:
        return (exc.code, exc.message, exc.details)


def at_once(raw_ops: list[Any]) -> Any:
    try:
        return typed(operations(raw_ops, settings()))
    except ApiError as exc:
        return (exc.code, exc.message, exc.details)


names = st.one_of(st.sampled_from(["kv", "k1", "put", "A.b_c~d:e@f-g", "x" * 200, "...", ".", "..", "", "a\nb",
                                   "a\n", "\n", "é", "a b", "x" * 201, "a/b"]), st.text(max_size=4))
versions = st.one_of(st.none(), st.integers(-2, 3), st.sampled_from([2**63 - 1, 2**63, -(2**63)]),
                     st.booleans(), st.floats(allow_nan=False), st.text(max_size=2))
datas = st.one_of(st.none(), payloads, st.dictionaries(st.text(max_size=3), payload_value, max_size=3),
                  payload_value, st.builds(lambda n: {"v": "x" * n}, st.integers(150, 250)))
operation_fields = st.fixed_dictionaries({}, optional={
    "machine": names, "id": names, "transition": names, "data": datas, "expected_version": versions,
    "extra": st.integers(), "k": st.just("transition")})
valid_operations = st.fixed_dictionaries({"machine": st.just("kv"), "id": st.sampled_from(["k1", "k.2"]),
                                          "transition": st.just("put")},
                                         optional={"data": st.none() | st.dictionaries(st.text(max_size=3), payload_value,
                                                                                       max_size=2),
                                                   "expected_version": st.none() | st.integers(0, 2**63 - 1)})
raw_operations = st.lists(st.one_of(valid_operations, valid_operations, operation_fields,
                                    st.sampled_from(["x", 1, None, []])), min_size=1, max_size=6)


@hypothesis_settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_operations)
def test_the_typed_path_gives_the_transitions_or_the_refusal_of_checking_one_by_one(raw_ops: list[Any]) -> None:
    try:
        raw_ops = orjson.loads(orjson.dumps(raw_ops))  # as a request body decodes
    except orjson.JSONEncodeError:  # past 64 bits: read_json refuses such a body
        return
    assert at_once(raw_ops) == one_by_one(raw_ops)


def test_ids_that_read_as_two_are_still_refused() -> None:
    with pytest.raises(ApiError) as got:
        operations([op(), op(transition="a\nb"), op(id="\n")], settings())
    assert got.value.code == "invalid_id" and got.value.message.startswith("operation 1: transition 'a\\nb'")
