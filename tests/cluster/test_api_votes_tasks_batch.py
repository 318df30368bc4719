"""Votes (SPEC 4.4), tasks (4.5) and batches (4.6) against a real 3-node cluster."""

from __future__ import annotations

import pytest

from .conftest import lock_source
from .harness import Cluster

VOTED = "/v1/machines/voted"
VOTED_YAML = """\
states:
  open: {}
  approved: {}
transitions:
  create: {from: null, to: open}
  approve:
    from: open
    to: approved
    votes: {voters: [alice, bob, carol], quorum: 2, timeout: 10m}
  touch: {from: open}
"""
PIPE = "/v1/machines/pipe"
PIPE_YAML = """\
states:
  init: {}
  work:
    tasks:
      - {name: build}
      - {name: check}
  done: {}
transitions:
  create: {from: null, to: init}
  start: {from: init, to: work}
  next: {from: work, to: done}
"""
LOCK = "/v1/machines/block"


@pytest.fixture(scope="module", autouse=True)
def machines(cluster3: Cluster) -> None:
    for path, source in ((VOTED, VOTED_YAML), (PIPE, PIPE_YAML), (LOCK, lock_source())):
        r = cluster3.http(0).put(path, body=source, content_type="application/yaml")
        assert r.status in (200, 201), r


def propose_approval(cluster: Cluster, oid: str) -> str:
    assert cluster.http(0).post(f"{VOTED}/objects/{oid}/transitions/create").status == 201
    r = cluster.http(1).post(f"{VOTED}/objects/{oid}/transitions/approve", json={"data": {"why": "ok"}})
    assert r.status == 202, r
    pending = r.json["pending"]
    assert pending["transition"] == "approve"
    assert pending["required"] == 2
    assert r.json["object"]["pending"]["change"] == pending["change"]
    return pending["change"]  # type: ignore[no-any-return]


def vote(cluster: Cluster, oid: str, voter: str, change: str, approve: bool = True, node: int = 0):  # type: ignore[no-untyped-def]
    return cluster.http(node).put(
        f"{VOTED}/objects/{oid}/votes/{voter}", json={"approve": approve, "change": change}
    )


def test_quorum_of_approvals_applies_the_change(cluster3: Cluster) -> None:
    change = propose_approval(cluster3, "v-1")
    r = vote(cluster3, "v-1", "alice", change)
    assert r.status == 200 and r.json["outcome"] == "pending", r
    same = vote(cluster3, "v-1", "alice", change, node=2)  # voting twice the same way is idempotent
    assert same.status == 200 and same.json["outcome"] == "pending", same
    r = vote(cluster3, "v-1", "bob", change, node=1)
    assert r.status == 200 and r.json["outcome"] == "applied", r
    assert cluster3.http(2).get(f"{VOTED}/objects/v-1").json["state"] == "approved"


def test_vote_refusals(cluster3: Cluster) -> None:
    change = propose_approval(cluster3, "v-2")
    assert vote(cluster3, "v-2", "alice", change).status == 200
    r = vote(cluster3, "v-2", "alice", change, approve=False)
    assert (r.status, r.error_code) == (409, "vote_conflict")
    r = vote(cluster3, "v-2", "mallory", change)
    assert (r.status, r.error_code) == (403, "not_a_voter")
    r = vote(cluster3, "v-2", "bob", "not-the-change")
    assert (r.status, r.error_code) == (409, "stale_change")
    r = cluster3.http(0).post(f"{VOTED}/objects/v-2/transitions/touch")
    assert (r.status, r.error_code) == (409, "pending_change")
    r = cluster3.http(0).put(f"{VOTED}/objects/v-2/votes/bob", json={"approve": "yes", "change": change})
    assert (r.status, r.error_code) == (400, "invalid_request")
    r = cluster3.http(0).put(f"{VOTED}/objects/v-2/votes/bob", json={"approve": True})
    assert (r.status, r.error_code) == (400, "invalid_request")
    obj = cluster3.http(1).get(f"{VOTED}/objects/v-2").json
    assert obj["state"] == "open" and obj["pending"]["votes"] == {"alice": True}


def test_rejections_that_make_quorum_unreachable_reject_the_change(cluster3: Cluster) -> None:
    change = propose_approval(cluster3, "v-3")
    assert vote(cluster3, "v-3", "alice", change, approve=False).json["outcome"] == "pending"
    r = vote(cluster3, "v-3", "bob", change, approve=False)
    assert r.status == 200 and r.json["outcome"] == "rejected", r
    obj = cluster3.http(1).get(f"{VOTED}/objects/v-3").json
    assert obj["state"] == "open" and obj["pending"] is None


def test_withdraw_the_pending_change(cluster3: Cluster) -> None:
    change = propose_approval(cluster3, "v-4")
    r = cluster3.http(2).delete(f"{VOTED}/objects/v-4/pending")
    assert r.status == 200, r
    assert cluster3.http(0).get(f"{VOTED}/objects/v-4").json["pending"] is None
    r = vote(cluster3, "v-4", "alice", change)
    assert (r.status, r.error_code) == (409, "stale_change")
    r = cluster3.http(2).delete(f"{VOTED}/objects/v-4/pending")
    assert r.status in (404, 409), r


def test_tasks_are_listed_reported_and_fire_next(cluster3: Cluster) -> None:
    http = cluster3.http(0)
    assert http.post(f"{PIPE}/objects/p-1/transitions/create").status == 201
    assert http.post(f"{PIPE}/objects/p-1/transitions/start").status == 200
    tasks = cluster3.http(1).get("/v1/tasks?status=pending&machine=pipe").json["tasks"]
    mine = {t["name"] for t in tasks if t["object"] == "p-1"}
    assert mine == {"build", "check"}
    r = cluster3.http(1).post(f"{PIPE}/objects/p-1/tasks/build", json={"status": "failed", "error": "boom"})
    assert r.status == 200, r
    failed = cluster3.http(2).get("/v1/tasks?status=failed&machine=pipe").json["tasks"]
    assert [t["name"] for t in failed if t["object"] == "p-1"] == ["build"]
    r = cluster3.http(2).post(f"{PIPE}/objects/p-1/tasks:retry", json={"status": "failed"})
    assert r.status == 200, r
    assert cluster3.http(0).post(f"{PIPE}/objects/p-1/tasks/build", json={"status": "completed"}).status == 200
    r = cluster3.http(0).post(f"{PIPE}/objects/p-1/tasks/check", json={"status": "completed", "data": {"ok": 1}})
    assert r.status == 200, r
    assert cluster3.http(1).get(f"{PIPE}/objects/p-1").json["state"] == "done"


def test_task_refusals(cluster3: Cluster) -> None:
    http = cluster3.http(0)
    assert http.post(f"{PIPE}/objects/p-2/transitions/create").status == 201
    r = http.post(f"{PIPE}/objects/p-2/tasks/build", json={"status": "maybe"})
    assert (r.status, r.error_code) == (400, "invalid_request")
    r = http.post(f"{PIPE}/objects/p-2/tasks:retry", json={"status": "completed"})
    assert (r.status, r.error_code) == (400, "invalid_request")
    r = http.post(f"{PIPE}/objects/missing/tasks/build", json={"status": "completed"})
    assert (r.status, r.error_code) == (404, "object_not_found")
    assert cluster3.http(1).get("/v1/tasks?status=bogus").error_code == "invalid_request"


def op(oid: str, transition: str, **kw: object) -> dict[str, object]:
    return {"machine": "block", "id": oid, "transition": transition, **kw}


def test_batch_reports_each_operation(cluster3: Cluster) -> None:
    ops = [op("b-1", "create"), op("b-2", "create"), op("b-1", "acquire", data={"owner": "w"}),
           op("b-2", "release", data={"owner": "w"}), op("b-1", "create")]
    r = cluster3.http(1).post("/v1/batch", json={"operations": ops})
    assert r.status == 200, r
    statuses = [res["status"] for res in r.json["results"]]
    assert statuses == [201, 201, 200, 409, 409]
    assert r.json["results"][2]["object"]["state"] == "held"
    assert r.json["results"][3]["error"]["code"] == "transition_not_allowed"
    assert cluster3.http(2).get(f"{LOCK}/objects/b-1").json["version"] == 2


def test_writes_answer_summaries_when_asked(cluster3: Cluster) -> None:
    """`Prefer: return=minimal` (RFC 7240): each object of a write's answer is its summary
    (machine, id, state, version, index); refusals and the rest of the answer are unchanged;
    without the header, whole objects."""
    ops = [op("s-1", "create"), op("s-1", "acquire", data={"owner": "w"}),
           op("s-1", "acquire", data={"owner": "w"})]
    r = cluster3.http(1).post("/v1/batch", json={"operations": ops},
                              headers={"Prefer": "return=minimal"})
    assert r.status == 200, r
    assert r.headers.get("Preference-Applied") == "return=minimal"
    created, acquired, refused = r.json["results"]
    stored = cluster3.http(2).get(f"{LOCK}/objects/s-1").json
    assert acquired == {"status": 200, "object": {"machine": "block", "id": "s-1", "state": "held",
                                                  "version": 2, "index": stored["index"]}}
    assert created["object"]["version"] == 1 and set(created["object"]) == set(acquired["object"])
    assert refused["status"] == 409 and refused["error"]["code"] == "transition_not_allowed"

    r = cluster3.http(0).post(f"{LOCK}/objects/s-1/transitions/release", json={"data": {"owner": "w"}},
                              headers={"Prefer": 'respond-async, return="minimal"'})
    assert r.status == 200, r
    assert r.json["object"] == {"machine": "block", "id": "s-1", "state": "free", "version": 3,
                                "index": r.json["event"]["index"]}
    assert r.json["event"]["to"] == "free" and r.headers.get("ETag") == '"3"'

    r = cluster3.http(0).post("/v1/batch", json={"operations": [op("s-1", "acquire", data={"owner": "v"})]})
    assert "Preference-Applied" not in r.headers
    assert r.json["results"][0]["object"]["data"] == {"owner": "v"}


def test_atomic_batch_applies_all_or_nothing(cluster3: Cluster) -> None:
    ops = [op("b-3", "create"), op("b-3", "acquire", data={"owner": "BAD OWNER"})]
    r = cluster3.http(0).post("/v1/batch", json={"atomic": True, "operations": ops})
    assert r.status == 422, r
    assert [res["status"] for res in r.json["results"]] == [409, 422]
    assert cluster3.http(1).get(f"{LOCK}/objects/b-3").error_code == "object_not_found"


def test_batch_refusals(cluster3: Cluster) -> None:
    http = cluster3.http(0)
    too_many = [op(f"x-{i}", "create") for i in range(1001)]
    r = http.post("/v1/batch", json={"operations": too_many})
    assert (r.status, r.error_code) == (413, "payload_too_large")
    r = http.post("/v1/batch", json={"operations": [op("ok", "create"), {"machine": "block"}]})
    assert (r.status, r.error_code) == (400, "invalid_request")
    assert r.json["error"]["details"][0]["operation"] == 1
    r = http.post("/v1/batch", json={"operations": [op("bad id", "create")]})
    assert (r.status, r.error_code) == (400, "invalid_id")
    r = http.post("/v1/batch", json={"operations": []})
    assert (r.status, r.error_code) == (400, "invalid_request")
    assert cluster3.http(1).get(f"{LOCK}/objects/ok").error_code == "object_not_found"
