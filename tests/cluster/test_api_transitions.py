"""Transitions API (SPEC 4.3): statuses, every refusal, concurrency control, idempotency.

Every refusal must leave the object exactly as it was (same version).
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import lock_source
from .harness import Cluster

M = "/v1/machines/tlock"
DOC = "/v1/machines/tdoc"
DOC_YAML = """\
states:
  draft: {}
  published:
    data:
      title: {type: string, required: true, min_length: 1}
  archived: {terminal: true}
transitions:
  create: {from: null, to: draft}
  publish: {from: draft, to: published}
  archive: {from: [draft, published], to: archived}
"""


@pytest.fixture(scope="module", autouse=True)
def machines(cluster3: Cluster) -> None:
    for path, source in ((M, lock_source()), (DOC, DOC_YAML)):
        r = cluster3.http(0).put(path, body=source, content_type="application/yaml")
        assert r.status in (200, 201), r


def post(cluster: Cluster, path: str, node: int = 0, **kw: Any):  # type: ignore[no-untyped-def]
    return cluster.http(node).post(path, **kw)


def version_of(cluster: Cluster, oid: str, base: str = M, node: int = 1) -> int:
    r = cluster.http(node).get(f"{base}/objects/{oid}")
    assert r.status == 200, r
    return r.json["version"]  # type: ignore[no-any-return]


def new_lock(cluster: Cluster, oid: str, owner: str | None = None) -> None:
    assert post(cluster, f"{M}/objects/{oid}/transitions/create").status == 201
    if owner:
        r = post(cluster, f"{M}/objects/{oid}/transitions/acquire", json={"data": {"owner": owner}})
        assert r.status == 200, r


def test_create_is_201_and_apply_is_200_with_object_and_event(cluster3: Cluster) -> None:
    r = post(cluster3, f"{M}/objects/t-1/transitions/create", node=1)
    assert r.status == 201, r
    assert r.json["object"]["version"] == 1
    assert r.json["object"]["state"] == "free"
    assert r.headers["ETag"] == '"1"'
    assert "event" in r.json
    r = post(cluster3, f"{M}/objects/t-1/transitions/acquire", node=2, json={"data": {"owner": "w1"}})
    assert r.status == 200, r
    assert r.json["object"]["state"] == "held"
    assert r.json["object"]["data"] == {"owner": "w1"}
    assert r.json["object"]["version"] == 2
    assert r.json["event"]["transition"] == "acquire"


def test_refusals_have_their_codes_and_change_nothing(cluster3: Cluster) -> None:
    new_lock(cluster3, "t-ref", owner="w1")
    before = version_of(cluster3, "t-ref")
    cases = [
        # (path suffix, request kwargs, status, code)
        ("transitions/fly", {}, 404, "transition_not_found"),
        ("transitions/acquire", {"json": {"data": {"owner": "w2"}}}, 409, "transition_not_allowed"),
        ("transitions/create", {}, 409, "object_exists"),
        ("transitions/release", {"json": {"data": {"owner": "intruder"}}}, 422, "guard_failed"),
        ("transitions/renew", {"json": {"data": {"owner": "w1"}, "expected_version": 1}}, 412,
         "version_conflict"),
        ("transitions/renew", {"json": {"data": {"owner": "w1"}}, "headers": {"If-Match": '"1"'}}, 412,
         "version_conflict"),
        ("transitions/renew", {"body": b"{not json", "content_type": "application/json"}, 400,
         "invalid_request"),
        ("transitions/renew", {"json": [1, 2]}, 400, "invalid_request"),
        ("transitions/renew", {"json": {"data": "owner"}}, 400, "invalid_request"),
        ("transitions/renew", {"json": {"data": {}, "surprise": 1}}, 400, "invalid_request"),
        ("transitions/renew", {"json": {"data": {"owner": "w1"}, "expected_version": "2"}}, 400,
         "invalid_request"),
        ("transitions/renew", {"json": {"data": {"owner": "x" * (64 * 1024)}}}, 413, "payload_too_large"),
        ("transitions/renew", {"body": b"{" + b" " * (1024 * 1024) + b"}",
                               "content_type": "application/json"}, 413, "payload_too_large"),
        ("transitions/renew?timeout=forever", {"json": {"data": {"owner": "w1"}}}, 400, "invalid_request"),
    ]
    for suffix, kw, status, code in cases:
        r = post(cluster3, f"{M}/objects/t-ref/{suffix}", **kw)
        assert (r.status, r.error_code) == (status, code), (suffix, r)
        assert r.json["error"]["message"]
    assert version_of(cluster3, "t-ref") == before


def test_error_details(cluster3: Cluster) -> None:
    new_lock(cluster3, "t-det", owner="w1")
    r = post(cluster3, f"{M}/objects/t-det/transitions/acquire", json={"data": {"owner": "w2"}})
    assert r.json["error"]["details"] == [{"state": "held", "allowed": r.json["error"]["details"][0]["allowed"]}]
    assert "release" in r.json["error"]["details"][0]["allowed"]
    r = post(cluster3, f"{M}/objects/t-det/transitions/renew", json={"data": {"owner": "w1"}, "expected_version": 1})
    assert r.json["error"]["details"] == [{"expected": 1, "actual": 2}]
    r = post(cluster3, f"{M}/objects/t-det/transitions/release", json={"data": {"owner": "nope"}})
    detail = r.json["error"]["details"][0]
    assert set(detail) >= {"path", "rule", "message"}
    assert "only the lock owner can release" in r.text
    r = post(cluster3, f"{M}/objects/t-det/transitions/acquire?x=1", body=b"{bad",
             content_type="application/json")
    assert "not valid JSON" in r.json["error"]["message"]


def test_unknown_object_and_machine(cluster3: Cluster) -> None:
    r = post(cluster3, f"{M}/objects/never-created/transitions/acquire", json={"data": {"owner": "a"}})
    assert (r.status, r.error_code) == (404, "object_not_found")
    r = post(cluster3, "/v1/machines/nope/objects/x/transitions/create")
    assert (r.status, r.error_code) == (404, "machine_not_found")


def test_matching_expected_version_and_if_match_apply(cluster3: Cluster) -> None:
    new_lock(cluster3, "t-ver", owner="w1")
    r = post(cluster3, f"{M}/objects/t-ver/transitions/renew", json={"data": {"owner": "w1"}, "expected_version": 2})
    assert r.status == 200 and r.json["object"]["version"] == 3
    r = post(cluster3, f"{M}/objects/t-ver/transitions/renew", json={"data": {"owner": "w1"}},
             headers={"If-Match": '"3"'})
    assert r.status == 200 and r.json["object"]["version"] == 4


def test_terminal_state_is_refused(cluster3: Cluster) -> None:
    assert post(cluster3, f"{DOC}/objects/d-1/transitions/create").status == 201
    assert post(cluster3, f"{DOC}/objects/d-1/transitions/archive").status == 200
    r = post(cluster3, f"{DOC}/objects/d-1/transitions/publish", json={"data": {"title": "t"}})
    assert (r.status, r.error_code) == (409, "terminal_state")
    assert version_of(cluster3, "d-1", DOC) == 2


def test_state_invariant_failure_is_guard_failed(cluster3: Cluster) -> None:
    assert post(cluster3, f"{DOC}/objects/d-2/transitions/create").status == 201
    r = post(cluster3, f"{DOC}/objects/d-2/transitions/publish", json={"data": {"title": ""}})
    assert (r.status, r.error_code) == (422, "guard_failed")
    assert version_of(cluster3, "d-2", DOC) == 1


def test_idempotency_key_applies_once_and_replays_the_result(cluster3: Cluster) -> None:
    new_lock(cluster3, "t-idem", owner="w1")
    headers = {"Idempotency-Key": "renew-t-idem-1"}
    first = post(cluster3, f"{M}/objects/t-idem/transitions/renew", node=0,
                 json={"data": {"owner": "w1"}}, headers=headers)
    assert first.status == 200, first
    # a retry on another node returns the original result and applies nothing
    again = post(cluster3, f"{M}/objects/t-idem/transitions/renew", node=2,
                 json={"data": {"owner": "w1"}}, headers=headers)
    assert again.status == 200, again
    assert again.json["object"]["version"] == first.json["object"]["version"]
    assert version_of(cluster3, "t-idem") == first.json["object"]["version"]
    reused = post(cluster3, f"{M}/objects/t-idem/transitions/release", node=1,
                  json={"data": {"owner": "w1"}}, headers=headers)
    assert (reused.status, reused.error_code) == (422, "idempotency_key_reused")
    assert version_of(cluster3, "t-idem") == first.json["object"]["version"]


def test_created_object_replays_201_on_retry(cluster3: Cluster) -> None:
    headers = {"Idempotency-Key": "create-t-idem-2"}
    first = post(cluster3, f"{M}/objects/t-idem-2/transitions/create", headers=headers)
    again = post(cluster3, f"{M}/objects/t-idem-2/transitions/create", node=1, headers=headers)
    assert first.status == again.status == 201
    assert again.json["object"]["version"] == 1
