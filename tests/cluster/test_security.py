"""SPEC 4.10 and the limits of 4.9: bearer tokens with roles, voters bound to their
principal, Raft refused off loopback without a secret, and a Raft peer without the
secret unable to get a command applied."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path

import pytest
from pysyncobj import pickle as raft_pickle

from cluster.core.entries import Entry, Transition, encode
from cluster.raft.member import RaftMember

from .conftest import lock_source
from .harness import ROOT, Cluster, Http

TOKENS = {
    "reader-token-0123456789": ("viewer", "read"),
    "alice-token-0123456789": ("alice", "write"),
    "bob-token-0123456789ab": ("bob", "write"),
    "admin-token-0123456789": ("ops", "admin"),
}
VOTED = """\
states:
  draft: {}
  approved: {}
transitions:
  create: {from: null, to: draft}
  approve: {from: draft, to: approved, votes: {voters: [alice, bob], quorum: all}}
"""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    base = tmp_path_factory.mktemp("auth")
    auth_file = base / "tokens.yaml"
    auth_file.write_text("tokens:\n" + "".join(
        f"  {t}: {{principal: {p}, role: {r}}}\n" for t, (p, r) in TOKENS.items()))
    cluster = Cluster(base, n=3, extra_args=["--auth-file", str(auth_file)])
    cluster.start()
    yield cluster
    cluster.stop()


def test_requests_without_or_with_unknown_token_are_unauthorized(secured: Cluster) -> None:
    http = secured.http(0)
    for headers in (None, bearer("wrong-token-0123456789"), {"Authorization": "Basic eDp5"}):
        r = http.get("/v1/machines", headers=headers)
        assert (r.status, r.error_code) == (401, "unauthorized"), r
    assert http.get("/healthz").status == 200
    assert http.get("/readyz").status == 200


def test_roles_are_ordered_read_write_admin(secured: Cluster) -> None:
    http = secured.http(1)
    reader, alice, admin = (bearer(t) for t in list(TOKENS)[:2] + [list(TOKENS)[3]])
    r = http.put("/v1/machines/seclock", body=lock_source(), content_type="application/yaml",
                 headers=alice)
    assert (r.status, r.error_code) == (403, "forbidden"), r
    r = http.put("/v1/machines/seclock", body=lock_source(), content_type="application/yaml",
                 headers=admin)
    assert r.status in (200, 201), r
    r = http.post("/v1/machines/seclock/objects/l1/transitions/create", json={}, headers=reader)
    assert (r.status, r.error_code) == (403, "forbidden"), r
    r = http.post("/v1/machines/seclock/objects/l1/transitions/create", json={}, headers=alice)
    assert r.status == 201, r
    assert http.get("/v1/machines/seclock/objects/l1", headers=reader).status == 200
    r = http.delete("/v1/machines/seclock/objects/l1", headers=alice)
    assert (r.status, r.error_code) == (403, "forbidden"), r
    r = http.post("/v1/cluster/snapshot", headers=alice)
    assert (r.status, r.error_code) == (403, "forbidden"), r


def test_a_voter_with_a_principal_votes_only_as_itself(secured: Cluster) -> None:
    http = secured.http(2)
    admin, alice = bearer(list(TOKENS)[3]), bearer(list(TOKENS)[1])
    assert http.put("/v1/machines/voted", body=VOTED, content_type="application/yaml",
                    headers=admin).status in (200, 201)
    assert http.post("/v1/machines/voted/objects/d1/transitions/create", json={},
                     headers=alice).status == 201
    r = http.post("/v1/machines/voted/objects/d1/transitions/approve", json={}, headers=alice)
    assert r.status == 202, r
    change = r.json["pending"]["change"]
    r = http.put("/v1/machines/voted/objects/d1/votes/bob", json={"approve": True, "change": change},
                 headers=alice)
    assert (r.status, r.error_code) == (403, "forbidden"), r
    r = http.put("/v1/machines/voted/objects/d1/votes/alice", json={"approve": True, "change": change},
                 headers=alice)
    assert r.status == 200 and r.json["outcome"] == "pending", r


def run_node(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "cluster", "node", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_non_loopback_raft_without_secret_is_refused(tmp_path: Path) -> None:
    for raft in (["--raft", "0.0.0.0:7999"], ["--raft", "127.0.0.1:7999", "--raft-bind", "0.0.0.0:7999"]):
        done = run_node(*raft, "--http", "127.0.0.1:8999", "--data-dir", str(tmp_path))
        assert done.returncode == 2, done
        assert "--cluster-secret" in done.stderr, done.stderr


def frame(message: object) -> bytes:
    data = zlib.compress(raft_pickle.dumps(message), 3)
    return struct.pack("i", len(data)) + data


def apply_entry_id() -> int:
    """pysyncobj numbers replicated methods by (version, name), as SyncObj.__init__ does."""
    names = [m for m in dir(RaftMember) if getattr(getattr(RaftMember, m), "replicated", False)
             and m != getattr(RaftMember, m).origName]
    ordered = sorted((getattr(RaftMember, m).ver, m) for m in names)
    return [getattr(RaftMember, m).origName for _, m in ordered].index("apply_entry")


def rogue_apply(cluster: Cluster, machine: str, oid: str) -> None:
    """What a process that can reach the Raft ports but lacks the secret would send:
    an unencrypted 'apply_command' with a well-formed entry, to every member."""
    entry = Entry(Transition(machine, oid, "create"), at_ms=int(time.time() * 1000),
                  request_id=uuid.uuid4().hex)
    command = bytes([0]) + raft_pickle.dumps((apply_entry_id(), (encode(entry),)))
    for node in cluster.nodes:
        with socket.create_connection(("127.0.0.1", node.raft_port), timeout=5) as sock:
            sock.sendall(frame("readonly") + frame({"type": "apply_command", "command": command,
                                                    "request_id": 1}))
            time.sleep(0.5)


def exists(http: Http, machine: str, oid: str) -> bool:
    for _ in range(20):
        r = http.get(f"/v1/machines/{machine}/objects/{oid}")
        if r.status in (200, 404):
            return r.status == 200
        time.sleep(0.5)
    raise AssertionError(r)


@pytest.mark.parametrize("secret", [None, "s3cret-cluster-key"], ids=["no-secret", "secret"])
def test_a_peer_without_the_secret_cannot_get_a_command_applied(tmp_path: Path, secret: str | None) -> None:
    extra = ["--cluster-secret", secret] if secret else []
    with Cluster(tmp_path, n=3, extra_args=extra) as cluster:
        http = cluster.http(0)
        assert http.put("/v1/machines/lk", body=lock_source(), content_type="application/yaml").status == 201
        rogue_apply(cluster, "lk", "rogue")
        time.sleep(1.0)
        applied = exists(http, "lk", "rogue")
        # the control: without a secret the attack works, which is why SPEC 4.10
        # refuses a non-loopback Raft address without one
        assert applied is (secret is None)
        if secret:  # a whole rogue node with the wrong secret gets nothing through either
            rogue = Cluster(tmp_path / "rogue", n=1, extra_args=[
                "--cluster-secret", "wrong-secret", *[a for n in cluster.nodes for a in ("--peer", n.raft)]])
            rogue.start(wait=False)
            try:
                r = rogue.http(0).post("/v1/machines/lk/objects/rogue2/transitions/create?timeout=2s", json={})
                assert r.status in (503, 504), r
            except OSError:
                pass  # not even serving yet: nothing applied either
            finally:
                rogue.stop()
            assert not exists(http, "lk", "rogue2")
            assert cluster.leader_index(timeout=30) in range(3)


def test_size_limits_are_enforced(cluster3: Cluster) -> None:
    """SPEC 4.9 limits: body 1 MiB, data 64 KiB, definition 256 KiB, regex 1,000
    characters, expression depth 32; each refused before anything is proposed."""
    http = cluster3.http(0)
    assert http.put("/v1/machines/limits", body=lock_source(), content_type="application/yaml").status in (200, 201)
    create = "/v1/machines/limits/objects/big/transitions/create"
    r = http.post(create, body=b'{"data": {"a": "' + b"x" * (1024 * 1024) + b'"}}',
                  content_type="application/json")
    assert (r.status, r.error_code) == (413, "payload_too_large"), r
    r = http.post(create, json={"data": {"a": "x" * (64 * 1024)}})
    assert (r.status, r.error_code) == (413, "payload_too_large"), r
    padding = "# " + "x" * 1000 + "\n"
    r = http.put("/v1/machines/huge", body=lock_source() + padding * 300, content_type="application/yaml")
    assert (r.status, r.error_code) == (413, "payload_too_large"), r
    regex = VOTED.replace("create: {from: null, to: draft}",
                          "create: {from: null, to: draft, $dst: {a: {regex: '" + "a" * 1001 + "'}}}")
    r = http.put("/v1/machines/longregex", body=regex, content_type="application/yaml")
    assert (r.status, r.error_code) == (400, "invalid_schema"), r
    deep = "${" + "upper(" * 40 + "dst.a" + ")" * 40 + "}"
    template = VOTED.replace("create: {from: null, to: draft}",
                             "create: {from: null, to: draft, set: {b: '" + deep + "'}}")
    r = http.put("/v1/machines/deep", body=template, content_type="application/yaml")
    assert (r.status, r.error_code) == (400, "invalid_schema"), r
    assert http.get("/v1/machines/limits/objects/big").status == 404


def test_an_unreadable_auth_file_stops_the_node_with_a_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "auth.yaml"
    bad.write_text("not: [a, mapping\n")
    result = subprocess.run(
        [sys.executable, "-m", "cluster", "node", "--raft", "127.0.0.1:1", "--http", "127.0.0.1:1",
         "--data-dir", str(tmp_path / "d"), "--auth-file", str(bad)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "--auth-file" in result.stderr and "Traceback" not in result.stderr
