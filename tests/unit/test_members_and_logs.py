"""The replicated member addresses (core/members.py), their snapshot encoding, and the
JSON log lines with request ids (cluster/logs.py)."""

from __future__ import annotations

import io
import logging

import orjson

from cluster.core import codec, engine
from cluster.core.entries import Entry, Member, decode, encode
from cluster.core.members import MemberInfo
from cluster.core.state import ClusterState
from cluster.logs import REQUEST_ID, JsonFormatter, RequestIdFilter, request_id_from


def apply(state: ClusterState, command: Member, index: int = 1) -> str:
    entry = decode(encode(Entry(command, at_ms=1000, request_id="r1")), index)
    return engine.apply(state, entry).status


def test_member_entries_set_replace_and_forget_addresses() -> None:
    state = ClusterState()
    assert apply(state, Member("127.0.0.1:7001", "127.0.0.1:8001")) == "ok"
    assert state.members == {"127.0.0.1:7001": MemberInfo("127.0.0.1:8001", "127.0.0.1:7001")}
    apply(state, Member("127.0.0.1:7001", "10.0.0.1:8001", "n1"))
    assert state.members["127.0.0.1:7001"] == MemberInfo("10.0.0.1:8001", "n1")
    apply(state, Member("127.0.0.1:7001", None))
    assert state.members == {}
    assert state.clock_ms == 0  # an address changes nothing else, not even the clock


def test_a_bad_member_entry_is_refused_the_same_everywhere() -> None:
    state = ClusterState()
    outcome = engine.apply(state, Entry(Member("127.0.0.1:7001", "x" * 300), at_ms=1))
    assert outcome.error is not None and outcome.error.code == "invalid_request"
    assert state.members == {}


def test_member_addresses_survive_a_snapshot_and_old_snapshots_load() -> None:
    state = ClusterState()
    apply(state, Member("127.0.0.1:7001", "127.0.0.1:8001", "n1"))
    assert codec.loads(codec.dumps(state)).members == state.members
    raw = orjson.loads(codec.dumps(state))
    del raw["members"]  # a snapshot written before members were replicated
    assert codec.loads(orjson.dumps(raw)).members == {}


def test_json_log_lines_carry_the_request_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("test.members.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        token = REQUEST_ID.set(request_id_from("abc-123"))
        logger.warning("written %d", 5, extra={"status": 201})
        REQUEST_ID.reset(token)
        logger.warning("no request")
    finally:
        logger.removeHandler(handler)
    first, second = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "written 5" and first["request_id"] == "abc-123" and first["status"] == 201
    assert first["level"] == "warning" and first["logger"] == "test.members.json" and first["ts"].endswith("Z")
    assert "request_id" not in second


def test_request_ids_from_clients_are_short_tokens_else_made_up() -> None:
    assert request_id_from("req-1.a:b") == "req-1.a:b"
    made = {request_id_from(bad) for bad in (None, "", "x" * 65, "has space", "ü")}
    assert len(made) == 5 and all(len(m) <= 64 for m in made)
