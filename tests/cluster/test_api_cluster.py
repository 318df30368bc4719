"""Cluster status, health, metrics, OpenAPI and routing errors (SPEC 4.8, 4.9)."""

from __future__ import annotations

from .harness import Cluster


def test_cluster_status_shape(cluster3: Cluster) -> None:
    leader = cluster3.leader_index()
    for i in range(3):
        r = cluster3.http(i).get("/v1/cluster")
        assert r.status == 200, r
        body = r.json
        assert body["node"] == {"raft": cluster3.nodes[i].raft, "http": cluster3.nodes[i].http}
        assert body["leader"]["raft"] == cluster3.nodes[leader].raft
        assert body["leader"]["http"] == cluster3.nodes[leader].http
        assert body["term"] >= 1
        assert body["commit_index"] >= 1 and body["applied_index"] >= 1
        assert body["ready"] is True
        assert {m["raft"] for m in body["members"]} == {n.raft for n in cluster3.nodes}
        for member in body["members"]:
            assert set(member) >= {"raft", "http", "connected", "match_index"}
            assert member["connected"] is True
        assert body["snapshot"]["store"] == "file"
        assert body["fsync"] == "always"  # the default: the journal is synced before a write is acknowledged
        assert set(body["snapshot"]) >= {"store", "last_index", "last_at", "ok"}


def test_health_and_readiness(cluster3: Cluster) -> None:
    for i in range(3):
        assert cluster3.http(i).get("/healthz").json == {"status": "ok"}
        ready = cluster3.http(i).get("/readyz")
        assert ready.status == 200 and ready.json["ready"] is True


def test_metrics_are_prometheus_text(cluster3: Cluster) -> None:
    http = cluster3.http(1)
    http.get("/v1/machines")
    r = http.get("/metrics")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    for name in ("fsm_http_requests_total", "fsm_http_request_duration_seconds_bucket",
                 "fsm_raft_term", "fsm_raft_commit_index", "fsm_raft_applied_index",
                 "fsm_raft_leader_changes_total", "fsm_read_barriers_total",
                 "fsm_idempotency_keys", "fsm_idempotency_capacity_keys",
                 "fsm_idempotency_effective_window_seconds 600.0",
                 "fsm_journal_sync_duration_seconds_bucket", "fsm_journal_entries_per_sync_bucket",
                 "fsm_gc_pause_seconds_bucket"):
        assert name in r.text, name
    assert 'route="/v1/machines"' in r.text
    syncs = next(line for line in r.text.splitlines() if line.startswith("fsm_journal_syncs_total "))
    assert float(syncs.split()[1]) >= 1  # at least the entries of the election and the cluster's start


def test_unknown_route_is_json_404_and_wrong_method_is_json_405(cluster3: Cluster) -> None:
    r = cluster3.http(0).get("/v1/nothing-here")
    assert (r.status, r.error_code) == (404, "not_found")
    r = cluster3.http(0).get("/")
    assert (r.status, r.error_code) == (404, "not_found")
    r = cluster3.http(0).request("PATCH", "/v1/machines")
    assert r.status == 405
    assert r.error_code == "method_not_allowed"
    assert "GET" in r.headers["Allow"]


def test_openapi_lists_exactly_the_served_routes(cluster3: Cluster) -> None:
    from cluster.api.app import build_app
    from cluster.config import Settings

    doc = cluster3.http(2).get("/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    settings = Settings(raft="127.0.0.1:1", http="127.0.0.1:2", data_dir=cluster3.base_dir)
    app = build_app(object(), settings)  # type: ignore[arg-type]  # the node is not used here
    served = {(r.method, r.resource.canonical) for r in app.router.routes() if r.method != "HEAD"}
    assert documented == served
    for path, ops in doc["paths"].items():
        for op in ops.values():
            refs = str(op)
            for name in [part.split("'")[0] for part in refs.split("#/components/schemas/")[1:]]:
                assert name in doc["components"]["schemas"], (path, name)


def test_member_change_input_is_validated(cluster3: Cluster) -> None:
    r = cluster3.http(0).post("/v1/cluster/members", json={"raft": "not-an-address"})
    assert (r.status, r.error_code) == (400, "invalid_request")
    r = cluster3.http(0).post("/v1/cluster/members", json={})
    assert (r.status, r.error_code) == (400, "invalid_request")


def test_snapshot_now(cluster3: Cluster) -> None:
    cluster3.http(0).get("/v1/machines")  # at least one barrier entry since start
    r = cluster3.http(0).post("/v1/cluster/snapshot")
    assert r.status == 200, r
    assert r.json["ok"] is True
    assert r.json["last_index"] >= 1
    status = cluster3.http(0).get("/v1/cluster").json
    assert status["snapshot"]["last_index"] == r.json["last_index"]
