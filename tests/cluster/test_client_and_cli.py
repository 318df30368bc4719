"""The Python client, the lock helper and the client CLI against a real 3-node cluster,
and `fsmcluster up` as a subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cluster.__main__ import main
from cluster.client import AsyncClient, Client, Lock, errors

from .conftest import lock_source
from .harness import ROOT, Cluster, Http

pytestmark = pytest.mark.cluster


def lock_machine(urls: list[str], name: str) -> None:
    with Client(urls) as fsm:
        fsm.put_machine(name, lock_source().replace("machine: lock", f"machine: {name}", 1))


async def test_machine_and_object_crud_through_the_client(cluster3: Cluster) -> None:
    source = lock_source().replace("machine: lock", "machine: crud", 1)
    async with AsyncClient(cluster3.urls) as fsm:
        put = await fsm.put_machine("crud", source)
        assert put["name"] == "crud" and put["revision"].startswith("sha256:")
        assert (await fsm.put_machine("crud", source))["changed"] is False
        assert "crud" in [m["name"] for m in (await fsm.list_machines())["machines"]]
        assert (await fsm.get_machine("crud"))["revision"] == put["revision"]
        assert (await fsm.diagram("crud")).startswith("stateDiagram-v2")
        assert "digraph" in await fsm.diagram("crud", "dot")

        for oid in ("a", "b", "c"):
            created = await fsm.transition("crud", oid, "create")
            assert created["object"]["version"] == 1 and created["object"]["state"] == "free"
        held = await fsm.transition("crud", "b", "acquire", {"owner": "w1"}, expected_version=1)
        assert (held["object"]["state"], held["object"]["version"]) == ("held", 2)
        assert (await fsm.get_object("crud", "b"))["data"] == {"owner": "w1"}
        assert (await fsm.get_object("crud", "b", consistency="stale"))["version"] <= 2

        page = await fsm.list_objects("crud", limit=2)
        assert [o["id"] for o in page["objects"]] == ["a", "b"] and page["next"] == "b"
        rest = await fsm.list_objects("crud", limit=2, after=page["next"])
        assert [o["id"] for o in rest["objects"]] == ["c"] and rest["next"] is None
        assert [o["id"] for o in (await fsm.list_objects("crud", state="held"))["objects"]] == ["b"]
        assert [o["id"] async for o in fsm.iter_objects("crud", page_size=1)] == ["a", "b", "c"]
        events = (await fsm.history("crud", "b", limit=1))["events"]
        assert [e["transition"] for e in events] == ["acquire"]

        with pytest.raises(errors.VersionConflict) as conflict:
            await fsm.transition("crud", "b", "renew", {"owner": "w1"}, expected_version=1)
        assert (conflict.value.expected, conflict.value.actual) == (1, 2)
        with pytest.raises(errors.GuardFailed):
            await fsm.transition("crud", "b", "release", {"owner": "w2"})
        with pytest.raises(errors.TransitionNotAllowed):
            await fsm.transition("crud", "a", "release", {"owner": "w1"})
        with pytest.raises(errors.ObjectNotFound):
            await fsm.get_object("crud", "nope")
        with pytest.raises(errors.MachineInUse):
            await fsm.delete_machine("crud")
        await fsm.delete_object("crud", "c")
        with pytest.raises(errors.ObjectNotFound):
            await fsm.get_object("crud", "c")


async def test_a_retried_key_returns_the_original_result(cluster3: Cluster) -> None:
    lock_machine(cluster3.urls, "idem")
    async with AsyncClient(cluster3.urls) as fsm:
        await fsm.transition("idem", "x", "create")
        first = await fsm.transition("idem", "x", "acquire", {"owner": "w1"}, idempotency_key="k-1")
        again = await fsm.transition("idem", "x", "acquire", {"owner": "w1"}, idempotency_key="k-1")
        assert first["object"]["version"] == again["object"]["version"] == 2
        assert (await fsm.get_object("idem", "x"))["version"] == 2


async def test_votes_and_batches_through_the_client(cluster3: Cluster) -> None:
    from schema_lang import load_example

    async with AsyncClient(cluster3.urls) as fsm:
        await fsm.put_machine("approval", load_example("approval"))
        await fsm.transition("approval", "r1", "create", {"title": "ship it"})
        await fsm.transition("approval", "r1", "submit")
        pending = (await fsm.transition("approval", "r1", "approve"))["pending"]
        assert (await fsm.vote("approval", "r1", "alice", True, pending["change"]))["outcome"] == "pending"
        with pytest.raises(errors.NotAVoter):
            await fsm.vote("approval", "r1", "mallory", True, pending["change"])
        done = await fsm.vote("approval", "r1", "bob", True, pending["change"])
        assert done["outcome"] == "applied" and done["object"]["state"] == "approved"

        batch = await fsm.batch([
            {"machine": "approval", "id": "r2", "transition": "create", "data": {"title": "t"}},
            {"machine": "approval", "id": "r2", "transition": "submit"},
        ])
        assert [r["status"] for r in batch["results"]] == [201, 200]
        assert batch["results"][1]["object"]["data"] == {"title": "t"}
        summaries = await fsm.batch([{"machine": "approval", "id": "r3", "transition": "create",
                                      "data": {"title": "t"}}], minimal=True)
        assert set(summaries["results"][0]["object"]) == {"machine", "id", "state", "version", "index"}


async def test_client_fails_over_when_the_first_urls_node_is_killed(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster()
    lock_machine(cluster.urls, "lock")
    cluster.kill(0)
    async with AsyncClient(cluster.urls, deadline=30.0, attempt_timeout=5.0) as fsm:
        started = time.monotonic()
        await fsm.transition("lock", "f1", "create")
        assert (await fsm.transition("lock", "f1", "acquire", {"owner": "w1"}))["object"]["version"] == 2
        assert (await fsm.get_object("lock", "f1"))["state"] == "held"
        assert time.monotonic() - started < 25


async def test_lock_tokens_increase_and_exclude_a_second_owner(cluster3: Cluster) -> None:
    lock_machine(cluster3.urls, "lock")
    async with AsyncClient(cluster3.urls) as fsm:
        first = Lock(fsm, "res-1", "owner-a")
        token_a = await first.acquire()  # creates the lock object on first use
        with pytest.raises(errors.LockHeld):
            await Lock(fsm, "res-1", "owner-b").acquire(wait=0.3)
        assert await first.renew() == token_a + 1
        await first.release()
        with pytest.raises(errors.LockLost):
            await first.release()

        async with Lock(fsm, "res-1", "owner-b", wait=5) as second:
            token_b = second.token
            assert token_b is not None and token_b > token_a
            waiter = asyncio.create_task(Lock(fsm, "res-1", "owner-c").acquire(wait=10))
            await asyncio.sleep(0.3)
            assert not waiter.done()
        token_c = await waiter  # released on leaving the block, so the waiter got in
        assert token_c > token_b


async def test_lock_renews_in_the_background_while_held(cluster3: Cluster) -> None:
    lock_machine(cluster3.urls, "lock")
    async with AsyncClient(cluster3.urls) as fsm:
        async with Lock(fsm, "res-renew", "owner-a", renew_every=0.2) as held:
            await asyncio.sleep(1.0)
            assert held.token is not None and held.version is not None
            assert held.version >= held.token + 2
            assert (await fsm.get_object("lock", "res-renew"))["version"] == held.version
        assert (await fsm.get_object("lock", "res-renew"))["state"] == "free"


def test_blocking_lock_is_a_context_manager(cluster3: Cluster) -> None:
    lock_machine(cluster3.urls, "lock")
    with Client(cluster3.urls) as fsm:
        with Lock(fsm, "res-sync", "owner-a", renew_every=0.2) as held:
            token = held.token
            assert fsm.get_object("lock", "res-sync")["data"] == {"owner": "owner-a"}
            time.sleep(0.7)
            assert held.version is not None and token is not None and held.version > token
        assert fsm.get_object("lock", "res-sync")["state"] == "free"
        assert Lock(fsm, "res-sync", "owner-b").acquire() > token  # type: ignore[operator]


# ---- CLI ----------------------------------------------------------------------------

def cli(capsys: pytest.CaptureFixture[str], urls: list[str], *argv: str) -> tuple[int, str, str]:
    url_args = [a for u in urls for a in ("--url", u)]
    code = main([*argv, *url_args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_machine_object_transition_and_vote(
    cluster3: Cluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import json

    from schema_lang import load_example

    urls = cluster3.urls
    file = tmp_path / "clilock.yaml"
    file.write_text(lock_source().replace("machine: lock\n", "", 1))  # named after the file
    code, out, _ = cli(capsys, urls, "machine", "apply", str(file))
    assert code == 0 and json.loads(out)["name"] == "clilock"
    code, out, _ = cli(capsys, urls, "machine", "apply", str(file), "--name", "clilock2")
    assert code == 0 and json.loads(out)["name"] == "clilock2"
    code, out, _ = cli(capsys, urls, "machine", "diagram", "clilock", "--format", "dot")
    assert code == 0 and "digraph" in out
    assert cli(capsys, urls, "transition", "clilock", "k1", "create")[0] == 0
    code, out, _ = cli(capsys, urls, "transition", "clilock", "k1", "acquire",
                       "--data", '{"owner": "w1"}', "--expected-version", "1")
    assert code == 0 and json.loads(out)["object"]["version"] == 2
    code, out, _ = cli(capsys, urls, "object", "get", "clilock", "k1")
    assert code == 0 and json.loads(out)["state"] == "held"
    code, out, _ = cli(capsys, urls, "object", "list", "clilock", "--state", "held", "--limit", "5")
    assert [o["id"] for o in json.loads(out)["objects"]] == ["k1"]
    code, out, _ = cli(capsys, urls, "object", "history", "clilock", "k1", "--limit", "1")
    assert json.loads(out)["events"][0]["transition"] == "acquire"

    code, _, err = cli(capsys, urls, "transition", "clilock", "k1", "acquire", "--data", '{"owner": "w2"}')
    assert code == 1 and err.startswith("error: transition_not_allowed: ")
    code, _, err = cli(capsys, urls, "transition", "clilock", "k1", "renew", "--data", "{nope")
    assert code == 2 and err.startswith("error: usage: ")
    code, _, err = cli(capsys, urls, "object", "get", "clilock", "missing")
    assert code == 1 and "error: object_not_found: " in err

    file = tmp_path / "approval.yaml"
    file.write_text(load_example("approval"))
    code, out, _ = cli(capsys, urls, "machine", "apply", str(file))  # named by its machine: key
    assert code == 0 and json.loads(out)["name"] == "approval"
    cli(capsys, urls, "transition", "approval", "cli-r", "create", "--data", '{"title": "x"}')
    cli(capsys, urls, "transition", "approval", "cli-r", "submit")
    code, out, _ = cli(capsys, urls, "transition", "approval", "cli-r", "approve")
    change = json.loads(out)["pending"]["change"]
    code, out, _ = cli(capsys, urls, "vote", "approval", "cli-r", "alice", "--approve")
    assert code == 0 and json.loads(out)["outcome"] == "pending"
    code, out, _ = cli(capsys, urls, "vote", "approval", "cli-r", "bob", "--reject", "--change", change)
    assert code == 0 and json.loads(out)["outcome"] == "pending"
    code, _, err = cli(capsys, urls, "vote", "approval", "cli-r", "bob", "--approve")
    assert code == 1 and err.startswith("error: vote_conflict: ")


def test_cli_status_shows_three_members_and_one_leader(
    cluster3: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, cluster3.urls[1:], "status")
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("127.0.0.1:")]
    assert len(rows) == 3
    assert sum(" leader" in row for row in rows) == 1
    leader = cluster3.nodes[cluster3.leader_index()].raft
    assert f"leader       {leader}" in out
    assert "term " in out and "commit index " in out and "applied index " in out


def test_cli_without_a_reachable_node_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    code, _, err = cli(capsys, [dead], "status", "--timeout", "1")
    assert code == 3 and err.startswith("error: unavailable: ")


# ---- fsmcluster up --------------------------------------------------------------------

def free_base_port() -> int:
    """A base port B with B+1..B+3 and B+101..B+103 all free on 127.0.0.1."""
    for base in range(21000 + (os.getpid() % 200) * 50, 60000, 211):
        ports = [base + i for i in (1, 2, 3, 101, 102, 103)]
        socks = []
        try:
            for port in ports:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free base port")


def test_up_starts_a_cluster_that_answers_and_stops_on_sigint(tmp_path: Path) -> None:
    base = free_base_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cluster", "up", "--nodes", "3", "--base-port", str(base), "--examples",
         "--data-dir", str(tmp_path / "up")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 90
        assert proc.stdout is not None
        while not any("Ctrl-C stops every node" in line for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "".join(lines)
            lines.append(line)
        banner = "".join(lines)
        urls = [f"http://127.0.0.1:{base + i}" for i in (1, 2, 3)]
        assert all(url in banner for url in urls) and "curl" in banner
        for url in urls:
            assert Http(url, timeout=5).get("/readyz").status == 200
        with Client(urls) as fsm:
            assert "lock" in [m["name"] for m in fsm.list_machines()["machines"]]
            assert fsm.transition("lock", "up-1", "create")["object"]["version"] == 1
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        for url in urls:
            with pytest.raises(OSError):
                Http(url, timeout=2).get("/healthz")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
