"""Machines API (SPEC 4.1) against a real 3-node cluster."""

from __future__ import annotations

import json

from .conftest import lock_source
from .harness import Cluster


def test_put_new_machine_is_201_then_200_unchanged(cluster3: Cluster) -> None:
    http = cluster3.http(0)
    r = http.put("/v1/machines/m-put", body=lock_source(), content_type="application/yaml")
    assert r.status == 201, r
    body = r.json
    assert body["name"] == "m-put"
    assert body["revision"].startswith("sha256:")
    assert body["changed"] is True
    assert set(body["states"]) == {"free", "held", "gone"}
    assert "acquire" in body["transitions"]
    again = cluster3.http(1).put("/v1/machines/m-put", body=lock_source(), content_type="application/yaml")
    assert again.status == 200, again
    assert again.json["changed"] is False
    assert again.json["revision"] == body["revision"]


def test_new_definition_creates_a_new_revision(cluster3: Cluster) -> None:
    http = cluster3.http(0)
    first = http.put("/v1/machines/m-rev", body=lock_source(), content_type="application/yaml").json
    changed = lock_source().replace("Exclusive lock with a lease", "Another description")
    r = http.put("/v1/machines/m-rev", body=changed, content_type="application/yaml")
    assert r.status == 200, r
    assert r.json["changed"] is True
    assert r.json["revision"] != first["revision"]
    got = cluster3.http(2).get("/v1/machines/m-rev").json
    assert got["revision"] == r.json["revision"]


def test_json_definitions_are_accepted(cluster3: Cluster) -> None:
    definition = {
        "states": {"a": {}, "b": {}},
        "transitions": {"create": {"from": None, "to": "a"}, "go": {"from": "a", "to": "b"}},
    }
    r = cluster3.http(1).put("/v1/machines/m-json", json=definition)
    assert r.status == 201, r


def test_invalid_schema_lists_every_problem_with_positions(cluster3: Cluster) -> None:
    bad = "states:\n  a: {}\ntransitions:\n  create: {from: null, to: nowhere}\n  go: {from: a, to: b, bogus: 1}\n"
    r = cluster3.http(0).put("/v1/machines/m-bad", body=bad, content_type="application/yaml")
    assert r.status == 400, r
    assert r.error_code == "invalid_schema"
    details = r.json["error"]["details"]
    assert len(details) >= 2
    for detail in details:
        assert set(detail) >= {"path", "line", "column", "message"}
        assert detail["line"] >= 1
    assert cluster3.http(0).get("/v1/machines/m-bad").error_code == "machine_not_found"


def test_empty_or_non_utf8_definition_is_invalid_request(cluster3: Cluster) -> None:
    http = cluster3.http(0)
    assert http.put("/v1/machines/m-empty", body="", content_type="application/yaml").error_code == "invalid_request"
    r = http.put("/v1/machines/m-latin", body=b"\xff\xfe", content_type="application/yaml")
    assert r.error_code == "invalid_request"


def test_definition_over_the_limit_is_413(cluster3: Cluster) -> None:
    big = lock_source() + "\n# " + "x" * (256 * 1024) + "\n"
    r = cluster3.http(0).put("/v1/machines/m-big", body=big, content_type="application/yaml")
    assert r.status == 413, r
    assert r.error_code == "payload_too_large"


def test_machine_name_is_validated(cluster3: Cluster) -> None:
    r = cluster3.http(0).put("/v1/machines/bad%20name", body=lock_source(), content_type="application/yaml")
    assert r.status == 400
    assert r.error_code == "invalid_id"


def test_list_and_get_machine(cluster3: Cluster) -> None:
    put = cluster3.http(0).put("/v1/machines/m-get", body=lock_source(), content_type="application/yaml").json
    listing = cluster3.http(1).get("/v1/machines")
    assert listing.status == 200
    entry = next(m for m in listing.json["machines"] if m["name"] == "m-get")
    assert entry == {"name": "m-get", "revision": put["revision"], "objects": 0}
    got = cluster3.http(2).get("/v1/machines/m-get")
    assert got.status == 200
    body = got.json
    assert body["name"] == "m-get"
    assert body["revision"] == put["revision"]
    assert body["source"] == lock_source()
    assert "states" in body["definition"]
    json.dumps(body["definition"])
    assert [r["revision"] for r in body["revisions"]] == [put["revision"]]


def test_unknown_machine_is_404(cluster3: Cluster) -> None:
    r = cluster3.http(1).get("/v1/machines/no-such-machine")
    assert r.status == 404
    assert r.error_code == "machine_not_found"
    assert cluster3.http(1).delete("/v1/machines/no-such-machine").error_code == "machine_not_found"


def test_diagrams(cluster3: Cluster) -> None:
    cluster3.http(0).put("/v1/machines/m-diag", body=lock_source(), content_type="application/yaml")
    mermaid = cluster3.http(1).get("/v1/machines/m-diag/diagram")
    assert mermaid.status == 200
    assert "stateDiagram-v2" in mermaid.text
    assert "acquire" in mermaid.text
    dot = cluster3.http(2).get("/v1/machines/m-diag/diagram?format=dot")
    assert dot.status == 200
    assert "digraph" in dot.text
    bad = cluster3.http(2).get("/v1/machines/m-diag/diagram?format=png")
    assert bad.status == 400 and bad.error_code == "invalid_request"


def test_delete_machine_in_use_is_409_then_deletes_when_empty(cluster3: Cluster) -> None:
    http = cluster3.http(0)
    http.put("/v1/machines/m-del", body=lock_source(), content_type="application/yaml")
    assert http.post("/v1/machines/m-del/objects/o1/transitions/create").status == 201
    r = cluster3.http(1).delete("/v1/machines/m-del")
    assert r.status == 409, r
    assert r.error_code == "machine_in_use"
    assert http.get("/v1/machines/m-del").status == 200
    assert http.delete("/v1/machines/m-del/objects/o1").status == 200
    r = cluster3.http(2).delete("/v1/machines/m-del")
    assert r.status == 200, r
    assert http.get("/v1/machines/m-del").error_code == "machine_not_found"
