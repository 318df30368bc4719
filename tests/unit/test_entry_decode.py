"""`entries.decode`'s typed path gives exactly the entry `decode_general` gives (the path
every entry took before it), or the same error: the same types (dict, int, float, bool,
tuple), the same key order, the same values, for every command kind and any blob,
since every node must replay a log to the same state whichever code it runs."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.core.entries import (
    COMMANDS,
    Barrier,
    Batch,
    Entry,
    Member,
    Tick,
    Transition,
    Vote,
    command_to_dict,
    decode,
    decode_general,
    encode,
)
from tests.fuzz.test_hostile_fuzz import deep, payload_value, payloads


def typed(value: Any) -> Any:
    """`value` with every type spelled out, floats by their bits and dicts in key order:
    `==` alone takes 1 for True and 1.0, and {"a", "b"} for {"b", "a"}."""
    if isinstance(value, msgspec.Struct):
        return (type(value).__name__, typed(msgspec.structs.astuple(value)))
    if isinstance(value, Entry):
        return ("Entry", typed(value.command), typed(value.at_ms), typed(value.request_id),
                typed(value.idempotency_key), typed(value.principal), value.index, typed(value.meta))
    if isinstance(value, dict):
        return ("dict", tuple((typed(k), typed(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(typed(v) for v in value))
    if isinstance(value, float):
        return ("float", value.hex())
    return (type(value).__name__, value)


def outcome(decoder: Any, blob: bytes) -> Any:
    try:
        return typed(decoder(blob, 7))
    except Exception as exc:  # noqa: BLE001 - the same error, whatever it is
        return ("raised", type(exc).__name__, str(exc))


def assert_same(blob: bytes) -> Any:
    expected = outcome(decode_general, blob)
    assert outcome(decode, blob) == expected, blob[:300]
    return expected


def blobs(raw: Any) -> list[bytes]:
    """`raw` as encode writes it (orjson, when it can: not past 64 bits), as the stdlib
    writes it (escapes, spaces) and with every non-ASCII character escaped."""
    out = [json.dumps(raw).encode(), json.dumps(raw, ensure_ascii=False, separators=(",", ":")).encode()]
    with contextlib.suppress(orjson.JSONEncodeError):
        out.append(orjson.dumps(raw))
    return out


def envelope(command: Any, **fields: Any) -> dict[str, Any]:
    return {"v": 1, "c": command, "t": 5, "r": "r1", "i": None, "p": None, "m": {}, **fields}


def op(**fields: Any) -> dict[str, Any]:
    return {"k": "transition", "machine": "m", "id": "a", "transition": "t", "data": None,
            "expected_version": None, **fields}


text = st.text(max_size=6)
json_values = st.one_of(payload_value, payloads, st.builds(deep, st.integers(0, 12)))
maybe_text = st.none() | text
transitions = st.builds(Transition, text, text, text, st.none() | payloads,
                        st.none() | st.integers(-(2**65), 2**65))
commands = st.one_of(
    transitions,
    st.builds(Batch, st.lists(transitions, max_size=4).map(tuple), st.booleans()),
    *(st.builds(cls, **{name: json_values for name in cls.__struct_fields__})
      for cls in COMMANDS.values() if cls not in (Transition, Batch)),
)
entries = st.builds(Entry, commands, st.integers(-(2**65), 2**65), text, maybe_text, maybe_text,
                    meta=st.dictionaries(text, json_values, max_size=2))


def raw_entry(entry: Entry) -> dict[str, Any]:
    return {"v": 1, "c": command_to_dict(entry.command), "t": entry.at_ms, "r": entry.request_id,
            "i": entry.idempotency_key, "p": entry.principal, "m": entry.meta}


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(entries)
def test_every_command_kind_decodes_as_the_general_path_decodes_it(entry: Entry) -> None:
    for blob in blobs(raw_entry(entry)):
        assert_same(blob)


EDIT_BYTES = [*b'{}[]",:0123456789-.eE tnfrul\\ax', 0xC3, 0xA9, 0xFF]


@settings(max_examples=300, deadline=None)
@given(entries, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 3), st.sampled_from(EDIT_BYTES)),
                         min_size=1, max_size=4))
def test_a_damaged_blob_decodes_or_fails_as_the_general_path_does(
        entry: Entry, edits: list[tuple[int, int, int]]) -> None:
    blob = bytearray(json.dumps(raw_entry(entry)).encode())
    for at, how, byte in edits:
        at %= len(blob) + 1
        if how == 0:
            blob[at:at + 1] = b""
        elif how == 1:
            blob[at:at] = bytes([byte])
        else:
            blob[at:at + 1] = bytes([byte])
    assert_same(bytes(blob))


NUMBER = r"-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,30})?([eE][-+]?[0-9]{1,3})?"


INTEGERS = st.one_of(st.integers(), st.integers(2**63 - 3, 2**64 + 3), st.integers(-(2**63) - 3, -(2**63) + 3),
                    st.integers(-(10**30), 10**30)).map(str)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.from_regex(NUMBER, fullmatch=True), INTEGERS))
def test_every_number_literal_reads_as_orjson_reads_it(literal: str) -> None:
    raw = json.dumps(envelope(op(data={"n": "N", "l": ["N"]}, expected_version="E"), t="T"))
    for target in ('"N"', '"E"', '"T"'):  # one at a time, the others a plain 1
        blob = raw.replace(target, literal)
        assert_same(blob.replace('"N"', "1").replace('"E"', "1").replace('"T"', "1").encode())


def batch(*operations: Any, atomic: Any = False, **fields: Any) -> bytes:
    return json.dumps(envelope({"k": "batch", "operations": list(operations), "atomic": atomic},
                               **fields)).encode()


EDGE_CASES = [
    batch(op(data={"nested": {"a": [1, 2.5, {"b": [None, True, False]}]}, "f": -0.0, "e": 1e-300})),
    batch(op(data={}), op(data=None), op(expected_version=0)),
    batch(),  # no operations
    batch(*(op(data={"n": n}) for n in (2**63 - 1, -(2**63), 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30))),
    batch(op(expected_version=2**63), op(expected_version=2**64), op(expected_version=-(2**63) - 1)),
    batch(op(), t=2**63), batch(op(), t=2**64), batch(op(), t=-(2**63) - 1), batch(op(), t=7.9),
    batch(op(data={"b": True, "one": 1, "x": 1.0, "s": "1"}), op(expected_version=True)),
    batch(op(id="é☃𝄞", machine="\u0000", transition="\ud83d\ude00", data={"ключ": "值"})),
    batch(op(data={"d": deep(5)}), op(data={"d": deep(6)}), op(data={"d": deep(7)}), op(data={"d": deep(70)})),
    *(batch(op(data={"d": "D"})).replace(b'"D"', b'{"p":' * n + b'"x"' + b"}" * n) for n in (1010, 1030)),
    batch(op(extra=1)), batch(op(k="vote")), batch({k: v for k, v in op().items() if k != "k"}),
    batch({k: v for k, v in op().items() if k != "machine"}), batch({k: v for k, v in op().items() if k != "data"}),
    batch({k: v for k, v in op().items() if k not in ("data", "expected_version")}),
    batch(op(machine=5)), batch(op(data=[1])), batch(op(data="x")), batch(op(expected_version="3")),
    batch(op(), atomic=1), batch(op(), atomic=None), batch(op(), v=2), batch(op(), v=True), batch(op(), v=1.0),
    batch(op(), r=None), batch(op(), r=5), batch(op(), i=3), batch(op(), m=None), batch(op(), m=[]),
    batch(op(), m={"a": [1, {"b": 2}]}), batch(op(), unknown="kept out"),
    json.dumps(envelope({"k": "batch", "operations": [op()], "atomic": True, "x": 1})).encode(),
    json.dumps(envelope({"k": "batch"})).encode(),  # no operations: the general path takes ()
    json.dumps(envelope({"k": "batch", "operations": [{"k": "vote", "machine": "m", "id": "a", "voter": "v",
                                                       "approve": True, "change": "c"}]})).encode(),
    json.dumps(envelope({"k": "batch", "operations": [{"k": "", "never": "x"}]})).encode(),
    json.dumps(envelope(op(data={"v": "x"}))).encode(),
    json.dumps(envelope({k: v for k, v in op().items() if k != "k"})).encode(),
    json.dumps({"c": op(), "t": 1}).encode(), json.dumps(envelope(op(), t=None)).encode(),
    json.dumps({k: v for k, v in envelope(op()).items() if k != "t"}).encode(),
    b'{"v":1,"c":{"k":"transition","machine":"m","id":"a","transition":"t","data":{"a":1,"b":2,"a":3}},"t":1}',
    b'{"v":1,"c":{"k":"transition","machine":"m","machine":"n","id":"a","transition":"t"},"t":1,"t":2}',
    b'{"v":1,"c":{"k":"vote"},"c":{"k":"transition","machine":"m","id":"a","transition":"t"},"t":1}',
    b'{"v":1,"c":{"k":"transition","machine":"m","id":"a","transition":"t","data":{"s":"\\ud800"}},"t":1}',
    b'{"v":1,"c":{"k":"transition","machine":"m","id":"a","transition":"t","data":{"s":"\xff"}},"t":1}',
    b'{"v":1,"c":{"k":"transition","machine":"m","id":"a","transition":"t","data":{"f":1e400}},"t":1}',
    b'{"v":1,"c":{"k":"transition","machine":"m","id":"a","transition":"t"},"t":1} x',
    b'\xef\xbb\xbf{"v":1,"c":{"k":"tick"},"t":1}', b"", b"null", b"[]", b'"x"', b"{}", b"{",
]


@pytest.mark.parametrize("blob", EDGE_CASES)
def test_edge_cases_decode_as_the_general_path_decodes_them(blob: bytes) -> None:
    assert_same(blob)


def test_the_typed_path_keeps_null_and_empty_data_apart_and_bools_apart_from_ints() -> None:
    entry = decode(batch(op(data=None), op(data={}), op(data={"b": True, "i": 1, "f": 1.0}), atomic=True))
    ops = entry.command.operations  # type: ignore[union-attr]
    assert [o.data for o in ops] == [None, {}, {"b": True, "i": 1, "f": 1.0}]
    assert [type(v) for v in ops[2].data.values()] == [bool, int, float]
    assert type(ops) is tuple and entry.command.atomic is True  # type: ignore[union-attr]


def test_malformed_transitions_are_still_corrupt() -> None:
    for blob in (batch({k: v for k, v in op().items() if k != "machine"}), batch(op(extra=1)),
                 batch({k: v for k, v in op().items() if k != "k"}), b"{", b"[]"):
        assert assert_same(blob)[0] == "raised" and outcome(decode, blob)[1] == "CorruptEntry"


def test_entries_of_every_kind_written_by_encode_read_back() -> None:
    for command in (Tick(), Barrier(), Member("r:1", "h:1", "n"), Vote("m", "a", "v", True, "c"),
                    Transition("m", "a", "t", {"x": [1.5]}, 3), Batch((Transition("m", "a", "t"),), True)):
        blob = encode(Entry(command, at_ms=9, request_id="r", idempotency_key="k", meta={"x": 1}))
        assert assert_same(blob)[0] == "Entry" and decode(blob).command == command


def test_transitions_and_their_batches_take_the_typed_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from cluster.core import entries

    def general(blob: bytes, index: int = 0) -> Entry:
        raise AssertionError("took the general path")

    monkeypatch.setattr(entries, "decode_general", general)
    ops = tuple(Transition("m", f"k{i}", "put", {"value": "0" * 64, "d": deep(5), "n": -(2**63)}, i)
                for i in range(100))
    for command in (Batch(ops), Batch(ops, True), ops[0], Transition("m", "a", "t")):
        blob = encode(Entry(command, at_ms=9, request_id="r", idempotency_key="k", principal="p"))
        assert decode(blob, 4) == Entry(command, 9, "r", "k", "p", 4)
