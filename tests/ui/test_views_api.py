"""The API the dashboard reads (issue 16), without a browser: an object's diagram as
text (Mermaid, DOT, SVG; also `fsmcluster object diagram`), objects per state, the id
prefix filter, every member's status, and the dashboard's static files."""

from __future__ import annotations

import pytest

from cluster.__main__ import main
from tests.cluster.harness import Cluster

from .conftest import BULK


def test_object_diagram_marks_the_current_state_and_the_path(ui_cluster: Cluster) -> None:
    http = ui_cluster.http(0)
    for i in (1, 2):
        r = http.post("/v1/machines/lock/objects/path-1/transitions/" + ("create" if i == 1 else "acquire"),
                      json={"data": {"owner": "w9"}} if i == 2 else {})
        assert r.status in (200, 201), r
    r = http.post("/v1/machines/lock/objects/path-1/transitions/release", json={"data": {"owner": "w9"}})
    assert r.status == 200, r
    mermaid = http.get("/v1/machines/lock/objects/path-1/diagram").text
    assert "class free current" in mermaid and "class held visited" in mermaid
    assert "free --> held: acquire #2" in mermaid and "held --> free: release #3" in mermaid
    assert "%% path: [*] -create-> free -acquire-> held -release-> free" in mermaid
    dot = http.get("/v1/machines/lock/objects/path-1/diagram?format=dot")
    assert dot.headers["Content-Type"].startswith("text/vnd.graphviz")
    assert '"free" [label="free", style="rounded,filled", fillcolor="#fde68a"' in dot.text
    assert '"held" -> "free" [label="expire, release #3"' not in dot.text  # one edge per transition
    assert '"held" -> "free" [label="release #3", color="#2563eb"' in dot.text
    svg = http.get("/v1/machines/lock/objects/path-1/diagram?format=svg")
    assert svg.headers["Content-Type"].startswith("image/svg+xml")
    assert '<g class="state current" data-state="free">' in svg.text
    assert 'class="edge taken" data-from="free" data-to="held"' in svg.text
    plain = http.get("/v1/machines/lock/diagram").text
    assert "current" not in plain and "#2" not in plain, "the machine's own diagram is unmarked"
    r = http.get("/v1/machines/lock/objects/nope/diagram")
    assert (r.status, r.error_code) == (404, "object_not_found")
    r = http.get("/v1/machines/lock/objects/path-1/diagram?format=png")
    assert (r.status, r.error_code) == (400, "invalid_request")


def test_cli_object_diagram_prints_the_same_picture(ui_cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    url = ui_cluster.urls[2]
    assert main(["object", "diagram", "lock", "l-5", "--url", url]) == 0
    out = capsys.readouterr().out
    assert out == ui_cluster.http(0).get("/v1/machines/lock/objects/l-5/diagram").text
    assert "class free current" in out
    assert main(["object", "diagram", "lock", "l-5", "--format", "dot", "--url", url]) == 0
    assert 'fillcolor="#fde68a"' in capsys.readouterr().out
    assert main(["object", "diagram", "lock", "missing", "--url", url]) != 0
    assert "object_not_found" in capsys.readouterr().err


def test_objects_per_state_and_the_id_prefix_filter(ui_cluster: Cluster) -> None:
    http = ui_cluster.http(1)
    counts = http.get("/v1/machines/bulk/states").json
    assert counts["objects"] == BULK and counts["states"] == {"free": BULK, "gone": 0, "held": 0}
    page = http.get("/v1/machines/bulk/objects?prefix=b-012&limit=7").json
    assert [o["id"] for o in page["objects"]] == [f"b-0120{i}" for i in range(7)]
    assert page["next"] == "b-01206"
    page = http.get(f"/v1/machines/bulk/objects?prefix=b-012&after={page['next']}&limit=1000").json
    assert [o["id"] for o in page["objects"]] == [f"b-012{i:02d}" for i in range(7, 100)]
    assert page["next"] is None
    assert http.get("/v1/machines/bulk/objects?prefix=zzz").json == {"objects": [], "next": None}
    r = http.get("/v1/machines/bulk/objects?prefix=a/b")
    assert (r.status, r.error_code) == (400, "invalid_id"), r
    svg = http.get("/v1/machines/bulk/diagram?format=svg&counts=true").text
    assert f'data-count="{BULK}"' in svg


def test_every_member_answers_for_itself(ui_cluster: Cluster) -> None:
    view = ui_cluster.http(0).get("/v1/cluster/nodes").json
    assert len(view["nodes"]) == 3 and all(n["ok"] for n in view["nodes"]), view
    assert {n["status"]["node"]["raft"] for n in view["nodes"]} == {n["raft"] for n in view["nodes"]}
    assert sum(n["status"]["leader"]["raft"] == n["raft"] for n in view["nodes"]) == 1


def test_dashboard_files_are_served_by_every_node(ui_cluster: Cluster) -> None:
    for i in range(3):
        http = ui_cluster.http(i)
        index = http.get("/ui/")
        assert index.status == 200 and index.headers["Content-Type"].startswith("text/html")
        assert 'src="app.js"' in index.text and "http" not in index.text.split("<body>")[0].replace(
            'name="viewport"', ""), "no asset from the network"
    http = ui_cluster.http(0)
    assert http.get("/ui/app.js").headers["Content-Type"].startswith("text/javascript")
    assert http.get("/ui").status == 302
    r = http.get("/ui/../cluster/api/app.py")
    assert r.status == 404
    r = http.get("/ui/nothing.js")
    assert (r.status, r.error_code) == (404, "not_found")


def test_a_member_that_does_not_answer_is_shown_down(ui_cluster: Cluster) -> None:
    follower = ui_cluster.follower_indexes()[-1]
    asking = next(i for i in range(3) if i != follower)
    ui_cluster.pause(follower)
    try:
        view = ui_cluster.http(asking).get("/v1/cluster/nodes").json
        down = [n for n in view["nodes"] if not n["ok"]]
        assert [n["http"] for n in down] == [ui_cluster.nodes[follower].http], view
        assert "no answer" in down[0]["error"]
    finally:
        ui_cluster.resume(follower)
        ui_cluster.wait_ready()
