"""Node settings from flags and FSM_* environment variables."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

import pytest

from cluster.cli.node import share_interpreter
from cluster.config import Peer, Settings, SettingsError, add_arguments, from_args


def parse(argv: list[str], env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return from_args(parser.parse_args(argv), env or {})


BASE = ["--raft", "127.0.0.1:7001", "--http", "127.0.0.1:8001", "--data-dir", "/tmp/n1"]


def test_flags_give_settings_with_defaults() -> None:
    s = parse(BASE + ["--peer", "127.0.0.1:7002@127.0.0.1:8002", "--peer", "127.0.0.1:7003"])
    assert s.raft == "127.0.0.1:7001"
    assert s.data_dir == Path("/tmp/n1")
    assert s.peers == (Peer("127.0.0.1:7002", "127.0.0.1:8002"), Peer("127.0.0.1:7003", None))
    assert s.request_timeout == 5.0
    assert s.max_body_bytes == 1024 * 1024
    assert s.max_data_bytes == 64 * 1024
    assert s.max_definition_bytes == 256 * 1024
    assert s.max_batch_operations == 1000
    assert s.journal_file == Path("/tmp/n1/raft.journal")
    assert s.snapshot_file == Path("/tmp/n1/raft.snapshot")


def test_environment_fills_what_flags_do_not_give() -> None:
    env = {
        "FSM_RAFT": "127.0.0.1:7001",
        "FSM_HTTP": "127.0.0.1:8001",
        "FSM_DATA_DIR": "/tmp/e",
        "FSM_PEERS": "127.0.0.1:7002, 127.0.0.1:7003@127.0.0.1:8003",
        "FSM_CLUSTER_ID": "prod",
        "FSM_REDIS": "redis://127.0.0.1:6379/0",
        "FSM_REQUEST_TIMEOUT": "2.5",
    }
    s = parse(["--http", "127.0.0.1:9000"], env)
    assert s.http == "127.0.0.1:9000"  # the flag wins
    assert s.cluster_id == "prod"
    assert s.redis == "redis://127.0.0.1:6379/0"
    assert s.request_timeout == 2.5
    assert [p.raft for p in s.peers] == ["127.0.0.1:7002", "127.0.0.1:7003"]


def test_missing_required_flag_says_which() -> None:
    with pytest.raises(SettingsError, match="--data-dir"):
        parse(["--raft", "127.0.0.1:7001", "--http", "127.0.0.1:8001"])


def test_non_loopback_raft_needs_a_cluster_secret() -> None:
    argv = ["--raft", "10.0.0.5:7001", "--http", "127.0.0.1:8001", "--data-dir", "/tmp/x"]
    with pytest.raises(SettingsError, match="cluster-secret"):
        parse(argv)
    assert parse(argv + ["--cluster-secret", "s3cret"]).cluster_secret == "s3cret"


@pytest.mark.parametrize("bad", ["nohost", "host:", "host:99999", ":80"])
def test_bad_addresses_are_refused(bad: str) -> None:
    with pytest.raises(SettingsError):
        parse(["--raft", bad, "--http", "127.0.0.1:8001", "--data-dir", "/tmp/x"])


def test_bad_env_number_is_refused() -> None:
    with pytest.raises(SettingsError, match="FSM_REQUEST_TIMEOUT"):
        parse(BASE, {"FSM_REQUEST_TIMEOUT": "soon"})


def test_inconsistent_raft_timeouts_are_refused() -> None:
    with pytest.raises(SettingsError):
        parse(BASE + ["--raft-min-timeout", "2", "--raft-max-timeout", "1"])


def test_own_address_as_peer_is_refused() -> None:
    with pytest.raises(SettingsError):
        parse(BASE + ["--peer", "127.0.0.1:7001"])


def test_raft_bind_is_optional_and_checked_like_raft() -> None:
    assert parse(BASE).raft_bind is None
    assert parse(BASE + ["--raft-bind", "127.0.0.1:7101"]).raft_bind == "127.0.0.1:7101"
    with pytest.raises(SettingsError, match="cluster-secret"):
        parse(BASE + ["--raft-bind", "0.0.0.0:7101"])


def test_fsync_is_always_unless_turned_off() -> None:
    assert parse(BASE).fsync == "always"
    assert parse(BASE + ["--fsync", "off"]).fsync == "off"
    assert parse(BASE, {"FSM_FSYNC": "OFF"}).fsync == "off"
    with pytest.raises(SettingsError, match="FSM_FSYNC"):
        parse(BASE, {"FSM_FSYNC": "sometimes"})
    with pytest.raises(SystemExit):  # argparse refuses the flag's value
        parse(BASE + ["--fsync", "never"])


def test_gil_switch_interval_is_a_millisecond_unless_set() -> None:
    """The node hands the GIL between its threads every millisecond unless told otherwise
    (docs/OPERATIONS.md); `share_interpreter` is what `fsmcluster node` calls with its settings."""
    assert parse(BASE).gil_switch_interval == 0.001
    assert parse(BASE, {"FSM_GIL_SWITCH_INTERVAL": "0.004"}).gil_switch_interval == 0.004
    with pytest.raises(SettingsError, match="--gil-switch-interval must be positive"):
        parse(BASE + ["--gil-switch-interval", "0"])
    before = sys.getswitchinterval()
    try:
        # (off: this is pytest's main thread, whose policy every later thread would inherit)
        share_interpreter(parse(BASE + ["--gil-switch-interval", "0.002", "--sched-batch", "off"]))
        assert sys.getswitchinterval() == pytest.approx(0.002)
    finally:
        sys.setswitchinterval(before)


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux's")
def test_the_node_threads_run_under_sched_batch_unless_told_otherwise() -> None:
    """A woken thread must not preempt one that may hold the GIL (docs/OPERATIONS.md): the node's
    threads inherit the policy `share_interpreter` sets on the thread that starts them."""
    assert parse(BASE).sched_batch is True
    assert parse(BASE, {"FSM_SCHED_BATCH": "off"}).sched_batch is False

    def policy_after(settings: Settings) -> tuple[int, int]:
        seen: list[int] = []

        def starter() -> None:  # a thread of its own: the policy is per thread
            share_interpreter(settings)
            child = threading.Thread(target=lambda: seen.append(os.sched_getscheduler(0)))
            child.start()
            child.join()
            seen.append(os.sched_getscheduler(0))

        thread = threading.Thread(target=starter)
        thread.start()
        thread.join()
        return seen[1], seen[0]

    before = sys.getswitchinterval()
    try:
        assert policy_after(parse(BASE)) == (os.SCHED_BATCH, os.SCHED_BATCH)
        assert policy_after(parse(BASE + ["--sched-batch", "off"])) == (os.SCHED_OTHER, os.SCHED_OTHER)
    finally:
        sys.setswitchinterval(before)
