"""Node settings: parsed once at start-up from flags and FSM_* environment variables.

Every flag `--foo-bar` can also be given as `FSM_FOO_BAR` (a flag wins over the
environment); `--peer` is repeatable and `FSM_PEERS` is comma-separated. Nothing
else in the program reads the environment: the rest gets a frozen `Settings`.

A peer is `HOST:RAFTPORT` or `HOST:RAFTPORT@HOST:HTTPPORT`. Every node publishes
its own HTTP address through the log (raft/membership.py), so the first form is
enough; the second only fills `/v1/cluster` before that. `--join URL` replaces
`--peer`: the node reads the members from a running one and asks to be added.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
KiB = 1024


class SettingsError(ValueError):
    """A flag or environment variable that cannot be used; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Peer:
    raft: str  # host:port of its Raft endpoint
    http: str | None = None  # host:port of its HTTP API, when known

    @staticmethod
    def parse(text: str) -> Peer:
        raft, _, http = text.strip().partition("@")
        parse_address(raft, "--peer")
        if http:
            parse_address(http, "--peer")
        return Peer(raft, http or None)


@dataclass(frozen=True, slots=True)
class Settings:
    raft: str  # host:port this node's Raft member binds to
    http: str  # host:port of the HTTP API
    data_dir: Path
    peers: tuple[Peer, ...] = ()
    cluster_id: str = "default"
    redis: str | None = None  # Redis URL: snapshots go there (else to <data-dir>/snapshots)
    redis_projection: bool = False  # leader keeps a read model of the objects in Redis
    snapshot_keep: int = 3  # snapshots kept in the store
    cluster_secret: str | None = None  # encrypts and authenticates Raft traffic
    auth_file: str | None = None
    raft_bind: str | None = None  # host:port to bind when --raft is an advertised address
    node_name: str | None = None  # shown in /v1/cluster; default: the Raft address
    join: str | None = None  # URL(s) of a running member: ask the cluster to add this node
    join_token: str | None = None  # bearer token for --join when the cluster has --auth-file
    log_format: str = "text"  # text | json
    access_log: bool = False  # log every request (else only 5xx answers)
    shutdown_timeout: float = 10.0  # SIGTERM: how long in-flight requests may take to finish
    # waits (seconds)
    request_timeout: float = 5.0  # default of the `timeout` query parameter
    max_request_timeout: float = 60.0
    read_timeout: float = 5.0  # how long a linearizable read waits for its barrier
    read_lease: bool = True  # leader stickiness + lease reads (cluster/raft/lease.py)
    idempotency_window: float = 600.0
    # limits (bytes / counts)
    max_body_bytes: int = 1 * MiB
    max_data_bytes: int = 64 * KiB
    max_definition_bytes: int = 256 * KiB
    max_batch_operations: int = 1000
    # admission (cluster/api/admission.py): operations in flight per node and lane, then 429
    max_in_flight: int = 500
    max_in_flight_high: int = 200
    admission_wait: float = 0.3  # refuse new work while the oldest admitted request waited this long
    log_budget: int = 32 * KiB  # normal-lane bytes the leader lets into its log ahead of its apply
    # Raft timing (seconds); see cluster/raft/DESIGN.md for why these values
    raft_min_timeout: float = 1.0
    raft_max_timeout: float = 2.0
    heartbeat_period: float = 0.1
    leader_fallback_timeout: float = 4.0
    auto_tick_period: float = 0.02
    # how long a thread holds the GIL while another waits (cli/node.py: share_interpreter)
    gil_switch_interval: float = 0.001
    # Linux's SCHED_BATCH for the node's threads: a wake-up does not preempt (cli/node.py)
    sched_batch: bool = True
    log_compaction_entries: int = 5000
    log_compaction_seconds: float = 300.0
    log_compaction_bytes: int = 64 * 1024 * 1024  # cluster/raft/compaction.py
    leader_compaction_factor: int = 4  # a leader waits for this many times a follower's log
    # test only, no flag: FSM_CLOCK_OFFSET_MS shifts this node's wall clock (a skewed node)
    clock_offset_ms: int = 0
    events_window: int = 100_000  # recent events a node keeps for GET /v1/events
    events_buffer: int = 10_000  # events queued per watcher before it is cut off
    events_keepalive: float = 15.0  # seconds between SSE keep-alive comments
    fsync: str = "always"  # always: sync the journal before acknowledging; off: never (power loss loses writes)
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def journal_file(self) -> Path:
        return self.data_dir / "raft.journal"

    @property
    def snapshot_file(self) -> Path:
        return self.data_dir / "raft.snapshot"

    def peer_http(self) -> dict[str, str | None]:
        """Raft address -> HTTP address for every member this node was told about."""
        out: dict[str, str | None] = {p.raft: p.http for p in self.peers}
        out[self.raft] = self.http
        return out

    def validate(self) -> Settings:
        raft_host, _ = parse_address(self.raft, "--raft")
        parse_address(self.http, "--http")
        bind_host = parse_address(self.raft_bind, "--raft-bind")[0] if self.raft_bind else raft_host
        for flag, host in (("--raft", raft_host), ("--raft-bind", bind_host)):
            if not is_loopback(host) and not self.cluster_secret:
                raise SettingsError(
                    f"{flag} {host} is not a loopback address: Raft traffic carries pickled "
                    "data, so a non-loopback Raft port needs --cluster-secret (FSM_CLUSTER_SECRET)"
                )
        if any(p.raft == self.raft for p in self.peers):
            raise SettingsError(f"--peer {self.raft} is this node's own --raft address")
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"--log-format must be text or json, got {self.log_format!r}")
        if self.join and self.peers:
            raise SettingsError("--join URL finds the members itself: give it without --peer")
        if not self.cluster_id or any(c.isspace() for c in self.cluster_id):
            raise SettingsError("--cluster-id must be a non-empty word")
        positive = {
            "--request-timeout": self.request_timeout,
            "--max-request-timeout": self.max_request_timeout,
            "--read-timeout": self.read_timeout,
            "--idempotency-window": self.idempotency_window,
            "--max-body-bytes": self.max_body_bytes,
            "--max-data-bytes": self.max_data_bytes,
            "--max-definition-bytes": self.max_definition_bytes,
            "--max-batch-operations": self.max_batch_operations,
            "--events-window": self.events_window,
            "--events-buffer": self.events_buffer,
            "--events-keepalive": self.events_keepalive,
            "--shutdown-timeout": self.shutdown_timeout,
            "--max-in-flight": self.max_in_flight,
            "--max-in-flight-high": self.max_in_flight_high,
            "--admission-wait": self.admission_wait,
            "--log-budget": self.log_budget,
            "--gil-switch-interval": self.gil_switch_interval,
        }
        for flag, value in positive.items():
            if value <= 0:
                raise SettingsError(f"{flag} must be positive, got {value}")
        if self.max_data_bytes > 64 * KiB:
            # the apply refuses stored data past 64 KiB on every node alike (deterministic);
            # this flag can only make the API's early check stricter
            raise SettingsError(
                f"--max-data-bytes must be at most {64 * KiB} (the limit every node's apply"
                f" enforces on stored data), got {self.max_data_bytes}"
            )
        if self.redis_projection and not self.redis:
            raise SettingsError("--redis-projection needs --redis URL")
        if self.snapshot_keep < 1:
            raise SettingsError(f"--snapshot-keep must be at least 1, got {self.snapshot_keep}")
        if self.leader_compaction_factor < 1:
            raise SettingsError("--leader-compaction-factor must be at least 1 (1: a leader "
                                f"compacts as its followers do), got {self.leader_compaction_factor}")
        if self.request_timeout > self.max_request_timeout:
            raise SettingsError("--request-timeout must not exceed --max-request-timeout")
        if not (3 * self.heartbeat_period < self.raft_min_timeout < self.raft_max_timeout):
            raise SettingsError(
                "need 3 x --heartbeat-period < --raft-min-timeout < --raft-max-timeout, got "
                f"{self.heartbeat_period}, {self.raft_min_timeout}, {self.raft_max_timeout}"
            )
        if self.fsync not in ("always", "off"):
            raise SettingsError(f"--fsync must be always or off, got {self.fsync!r}")
        if self.leader_fallback_timeout <= self.heartbeat_period:
            raise SettingsError("--leader-fallback-timeout must exceed --heartbeat-period")
        return self


def parse_address(text: str, flag: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
        raise SettingsError(f"{flag} expects HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fsync_policy(text: str) -> str:
    """`always` (sync the Raft journal before an entry counts) or `off`."""
    value = text.strip().lower()
    if value not in ("always", "off"):
        raise ValueError(f"expected always or off, got {text!r}")
    return value


def switch(text: str) -> bool:
    """An on/off flag: `--flag` alone, `--flag=false`, or FSM_FLAG=1/0/true/false/yes/no."""
    value = {"1": True, "true": True, "yes": True, "on": True,
             "0": False, "false": False, "no": False, "off": False}.get(text.strip().lower())
    if value is None:
        raise ValueError(f"expected true or false, got {text!r}")
    return value


# flag name -> (type, help); defaults come from Settings
_OPTIONS: dict[str, tuple[Any, str]] = {  # type: a callable parsing the text
    "raft": (str, "HOST:PORT of this node's Raft endpoint (required)"),
    "http": (str, "HOST:PORT of this node's HTTP API (required)"),
    "raft-bind": (str, "HOST:PORT the Raft endpoint binds to, when --raft is only advertised"),
    "data-dir": (str, "directory for the Raft journal and snapshot (required)"),
    "name": (str, "this node's name in /v1/cluster (default: its --raft address)"),
    "join": (str, "URL of a running member (or several, comma-separated): join that cluster"),
    "join-token": (str, "bearer token (admin) for --join when the cluster uses --auth-file"),
    "log-format": (str, "text or json (one JSON object per line) (default text)"),
    "access-log": (switch, "log one line per request (default: only 5xx answers)"),
    "shutdown-timeout": (float, "SIGTERM: seconds in-flight requests may take (default 10)"),
    "cluster-id": (str, "cluster name, prefixes snapshot keys (default: default)"),
    "redis": (str, "Redis URL for snapshots (and recovery of a lost data dir)"),
    "redis-projection": (switch, "keep an eventually consistent read model of objects in Redis"),
    "snapshot-keep": (int, "snapshots kept in the store (default 3)"),
    "cluster-secret": (str, "shared secret: encrypts and authenticates Raft traffic"),
    "auth-file": (str, "file mapping bearer tokens to principals and roles"),
    "request-timeout": (float, "default write wait in seconds (default 5)"),
    "max-request-timeout": (float, "largest `timeout` a request may ask for (default 60)"),
    "read-timeout": (float, "how long a linearizable read may wait (default 5)"),
    "read-lease": (switch, "on: followers stick to a live leader and the leader serves "
                           "linearizable reads under a lease without a round; off: a round "
                           "per read (default on)"),
    "idempotency-window": (float, "seconds an Idempotency-Key is remembered (default 600)"),
    "max-body-bytes": (int, "largest request body (default 1 MiB)"),
    "max-data-bytes": (int, "largest object data / transition payload (default and most 64 KiB)"),
    "max-definition-bytes": (int, "largest machine definition (default 256 KiB)"),
    "max-batch-operations": (int, "most operations in one batch (default 1000)"),
    "max-in-flight": (int, "operations in flight per node before 429 overloaded (default 500)"),
    "max-in-flight-high": (int, "the same for the X-Priority: high lane (default 200)"),
    "admission-wait": (float, "429 while a lane's oldest request has waited this long (0.3 s)"),
    "log-budget": (int, "bytes of normal-lane entries the leader lets into its Raft log ahead of "
                        "what it has applied: what a high-lane entry waits behind (default 32 KiB)"),
    "raft-min-timeout": (float, "Raft election timeout, lower bound in seconds (default 1.0)"),
    "raft-max-timeout": (float, "Raft election timeout, upper bound in seconds (default 2.0)"),
    "heartbeat-period": (float, "leader heartbeat period in seconds (default 0.1)"),
    "leader-fallback-timeout": (float, "a leader without quorum for this long steps down (4.0)"),
    "auto-tick-period": (float, "Raft thread poll period in seconds (default 0.02)"),
    "gil-switch-interval": (float, "seconds a thread keeps Python's interpreter lock while "
                                   "another waits for it: the Raft and HTTP threads hand it "
                                   "over this often (default 0.001; CPython's own 0.005)"),
    "sched-batch": (switch, "on: the node's threads run under Linux's SCHED_BATCH policy, so a "
                            "thread that wakes up does not preempt a running one, which may hold "
                            "the interpreter lock; off: the kernel's default (default on)"),
    "log-compaction-entries": (int, "snapshot after this many log entries once the log holds as "
                                    "many bytes as the last snapshot, or 20 times as many entries "
                                    "(default 5000)"),
    "log-compaction-seconds": (float, "or after this many seconds (default 300)"),
    "log-compaction-bytes": (int, "the most log bytes a snapshot waits for; 0: snapshot by entries "
                                  "alone (default 64 MiB)"),
    "leader-compaction-factor": (int, "while it leads, a node waits for this many times the log "
                                      "(entries and bytes) before its own snapshot, so that its "
                                      "dump rarely falls in its followers' (at most the 20x entry "
                                      "cap); 1: as followers (default 4)"),
    "events-window": (int, "recent events kept for GET /v1/events (default 100000)"),
    "events-buffer": (int, "events queued per watcher before it is cut off (default 10000)"),
    "events-keepalive": (float, "seconds between SSE keep-alive comments (default 15)"),
    "fsync": (fsync_policy, "always: sync the journal before a write is acknowledged; off: never "
                            "(a power cut loses acknowledged writes) (default always)"),
}


_FIELD = {"name": "node_name"}  # flags whose Settings field has another name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for name, (kind, help_text) in _OPTIONS.items():
        extra: dict[str, Any] = {"nargs": "?", "const": True} if kind is switch else {}
        parser.add_argument(f"--{name}", type=kind, default=None, help=f"{help_text} [FSM_{_env(name)}]",
                            **extra)
    parser.add_argument(
        "--peer",
        action="append",
        default=None,
        metavar="HOST:PORT[@HOST:HTTPPORT]",
        help="another member's Raft address, optionally with its HTTP address; repeat [FSM_PEERS]",
    )


def _env(name: str) -> str:
    return name.upper().replace("-", "_")


def from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from parsed flags, falling back to FSM_* variables, then to defaults."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, (kind, _) in _OPTIONS.items():
        value = getattr(args, name.replace("-", "_"), None)
        if value is None and f"FSM_{_env(name)}" in environ:
            raw = environ[f"FSM_{_env(name)}"]
            try:
                value = kind(raw)
            except ValueError:
                raise SettingsError(f"FSM_{_env(name)}={raw!r} is not a valid {kind.__name__}") from None
        if value is not None:
            values[_FIELD.get(name, name.replace("-", "_"))] = value
    for required in ("raft", "http", "data_dir"):
        if required not in values:
            flag = required.replace("_", "-")
            raise SettingsError(f"--{flag} (or FSM_{_env(flag)}) is required")
    peers: Sequence[str] = getattr(args, "peer", None) or [
        p for p in environ.get("FSM_PEERS", "").split(",") if p.strip()
    ]
    offset = environ.get("FSM_CLOCK_OFFSET_MS", "0").strip()
    if not re.fullmatch(r"-?[0-9]{1,15}", offset):
        raise SettingsError(f"FSM_CLOCK_OFFSET_MS={offset!r} is not a whole number of ms")
    values["clock_offset_ms"] = int(offset)
    values["data_dir"] = Path(str(values["data_dir"]))
    values["peers"] = tuple(Peer.parse(p) for p in peers)
    return Settings(**values).validate()  # type: ignore[arg-type]
