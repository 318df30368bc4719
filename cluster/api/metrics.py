"""Prometheus metrics of one app: HTTP requests and latency, Raft term/indexes/leader changes.

Each app has its own `CollectorRegistry`, so several apps in one process (tests)
do not collide. Raft figures are read at scrape time from the node's published
status, never from pysyncobj's internals.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from cluster import gc_policy
from cluster.core.state import ClusterState
from cluster.errors import ClusterError
from cluster.raft.sync_stats import SyncStats

from .context import ClusterNode

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def idempotency_gauges(node: ClusterNode) -> Iterator[Metric]:
    """The Idempotency-Key table: how full it is and the window it keeps every key for
    (keyed writes beyond capacity are refused with 429, so the window never shrinks)."""

    def read(state: ClusterState) -> tuple[int, int, int, int | None, int]:
        return (len(state.idempotency), state.idempotency_max_keys, state.idempotency_window_ms,
                state.idempotency_oldest_ms(), state.clock_ms)

    try:
        keys, capacity, window_ms, oldest_ms, clock_ms = node.read(read)
    except ClusterError:
        return
    window = window_ms / 1000
    gauges = {
        "fsm_idempotency_keys": ("Idempotency-Keys remembered in the state", keys),
        "fsm_idempotency_capacity_keys": ("most Idempotency-Keys the state remembers", capacity),
        "fsm_idempotency_effective_window_seconds": (
            "every remembered key is kept at least this long (beyond capacity, keyed writes "
            "are refused with 429 instead of forgetting keys early)", window),
        "fsm_idempotency_sustained_keyed_writes_per_second": (
            "keyed writes per second the table holds for the whole window", capacity / max(window, 1)),
        "fsm_idempotency_oldest_key_age_seconds": (
            "age of the oldest remembered key, by the state's clock",
            (clock_ms - oldest_ms) / 1000 if oldest_ms is not None else 0),
    }
    for name, (doc, value) in gauges.items():
        yield GaugeMetricFamily(name, doc, value=value)


class RaftCollector(Collector):
    def __init__(self, node: ClusterNode) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        try:
            status = self.node.status()
            applied, commit = self.node.applied_index, self.node.commit_index
            snapshot = self.node.snapshot_info
        except ClusterError:
            return
        gauges = {
            "fsm_raft_term": ("current Raft term", status.term),
            "fsm_raft_commit_index": ("highest log index known committed", commit),
            "fsm_raft_applied_index": ("highest log index applied to the state", applied),
            "fsm_raft_is_leader": ("1 when this node is the leader", int(status.is_leader)),
            "fsm_raft_has_quorum": ("1 when this node sees a quorum", int(status.has_quorum)),
            "fsm_raft_ready": ("1 when /readyz would answer 200", int(status.ready())),
            "fsm_raft_log_entries": ("entries in the local Raft log", status.log_length),
            "fsm_raft_members": ("members in the configuration this node knows", 1 + len(status.members)),
            "fsm_raft_lag_entries": ("entries the leader committed that this node has not applied",
                                     status.lag),
            "fsm_snapshot_last_index": ("log index of the last snapshot", snapshot.last_index or 0),
            "fsm_snapshot_ok": ("1 when the last snapshot attempt succeeded", int(snapshot.ok)),
            "fsm_snapshot_size_bytes": ("size of the last stored snapshot", snapshot.size or 0),
            "fsm_snapshot_last_timestamp_seconds": (
                "when the last stored snapshot was taken (unix time)", (snapshot.last_at_ms or 0) / 1000
            ),
        }
        projection = getattr(self.node, "projection_info", None)
        if projection is not None:
            gauges["fsm_projection_ok"] = ("1 when the Redis read model is being written", int(projection.ok))
            gauges["fsm_projection_last_index"] = ("last Raft index written to the read model",
                                                   projection.last_index)
            gauges["fsm_projection_queued"] = ("applied entries waiting for the read model", projection.queued)
        for name, (doc, value) in gauges.items():
            yield GaugeMetricFamily(name, doc, value=value)
        yield CounterMetricFamily(
            "fsm_raft_leader_changes", "leader changes seen by this node", value=status.leader_changes
        )
        yield from idempotency_gauges(self.node)
        yield from sync_metrics(getattr(self.node, "sync_stats", None))
        yield from gc_metrics()
        barriers = getattr(getattr(self.node, "reads", None), "barriers_sent", None)
        if barriers is not None:
            yield CounterMetricFamily(
                "fsm_read_barriers", "read-index requests made for linearizable reads", value=barriers
            )
        read_index = getattr(getattr(self.node, "member", None), "read_index", None)
        if read_index is not None:
            yield CounterMetricFamily("fsm_read_index_rounds",
                                      "heartbeat rounds this node led to confirm read indexes",
                                      value=read_index.rounds)
            yield CounterMetricFamily("fsm_read_index_questions",
                                      "read indexes this node asked its leader for",
                                      value=read_index.questions)
            yield CounterMetricFamily("fsm_read_lease_rounds",
                                      "empty heartbeat rounds the leader sent to keep its read lease",
                                      value=read_index.lease_rounds)
            yield CounterMetricFamily("fsm_read_lease_confirms",
                                      "reads and follower questions the leader's Raft thread "
                                      "confirmed under its lease, without a round",
                                      value=read_index.lease_confirms)
        stickiness = getattr(getattr(self.node, "member", None), "stickiness", None)
        if stickiness is not None:
            yield CounterMetricFamily("fsm_raft_votes_ignored",
                                      "vote requests ignored while hearing from a live leader "
                                      "(leader stickiness, --read-lease on)",
                                      value=stickiness.votes_ignored)
        reads = CounterMetricFamily("fsm_linearizable_reads",
                                    "linearizable reads by path: lease (served at once under the "
                                    "leader's lease) or read_index (through the Raft thread)",
                                    labels=["path"])
        reads.add_metric(["lease"], getattr(self.node, "lease_reads", 0))
        reads.add_metric(["read_index"], getattr(self.node, "round_reads", 0))
        yield reads


class AdmissionCollector(Collector):
    """Per lane: operations in flight, requests admitted and refused, entries queued to propose."""

    def __init__(self, node: ClusterNode, admission: Any) -> None:
        self.node = node
        self.admission = admission

    def collect(self) -> Iterator[Metric]:
        in_flight = GaugeMetricFamily("fsm_admission_in_flight",
                                      "operations admitted and not yet answered", labels=["lane"])
        limit = GaugeMetricFamily("fsm_admission_limit", "operations allowed in flight", labels=["lane"])
        admitted = CounterMetricFamily("fsm_admission_admitted", "requests admitted", labels=["lane"])
        rejected = CounterMetricFamily("fsm_admission_rejected",
                                       "requests refused with 429 overloaded", labels=["lane"])
        for lane in self.admission.lanes.values():
            in_flight.add_metric([lane.name], lane.in_flight)
            limit.add_metric([lane.name], lane.limit)
            admitted.add_metric([lane.name], lane.admitted)
            rejected.add_metric([lane.name], lane.rejected)
        oldest = GaugeMetricFamily("fsm_admission_oldest_wait_seconds",
                                   "how long the oldest admitted request has waited", labels=["lane"])
        now = self.admission.clock()
        for lane in self.admission.lanes.values():
            oldest.add_metric([lane.name], lane.oldest_wait(now))
        yield from (in_flight, limit, admitted, rejected, oldest)
        group = getattr(self.node, "group", None)
        if group is not None:
            queued = GaugeMetricFamily("fsm_proposal_queue",
                                       "entries waiting for the next group commit", labels=["lane"])
            high, normal = group.queued
            queued.add_metric(["high"], high)
            queued.add_metric(["normal"], normal)
            yield queued
        yield from log_gate_metrics(getattr(self.node, "member", None))


def log_gate_metrics(member: Any) -> Iterator[Metric]:
    """The leader's log gate and a follower's high-lane forwards (cluster/raft/log_gate.py)."""
    gate, forwarder = getattr(member, "log_gate", None), getattr(member, "high_forwarder", None)
    if gate is None or forwarder is None:
        return
    yield GaugeMetricFamily("fsm_log_gate_held_bytes", "normal-lane bytes the leader holds "
                            "in front of its log", value=gate.held_bytes)
    yield GaugeMetricFamily("fsm_log_budget_bytes", "normal-lane bytes the leader lets into "
                            "its log ahead of its apply now: --log-budget while clients use the "
                            "high lane, more when they do not", value=gate.current_budget())
    yield GaugeMetricFamily("fsm_log_backlog_bytes", "bytes in the leader's log not yet "
                            "applied (what a new entry waits behind)", value=gate.backlog_bytes)
    yield GaugeMetricFamily("fsm_log_backlog_peak_bytes", "the largest fsm_log_backlog_bytes "
                            "seen since the node started", value=gate.backlog_peak)
    yield CounterMetricFamily("fsm_log_gate_refused", "followers' commands the leader refused "
                              "for overload (429 on the follower)", value=gate.refused)
    yield CounterMetricFamily("fsm_high_forwarded", "high-lane commands this follower sent "
                              "to the leader ahead of pysyncobj's queue", value=forwarder.sent)
    yield CounterMetricFamily("fsm_high_answered_by_leader", "high-lane commands this "
                              "follower answered with the outcome the leader applied, before "
                              "its own apply", value=forwarder.answered_early)


class FeedCollector(Collector):
    """The event feed: open watchers, events held, watchers cut off for falling behind."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        hub = self.hub
        yield GaugeMetricFamily("fsm_events_watchers", "open event-feed watchers", value=hub.open)
        yield GaugeMetricFamily("fsm_events_window_events", "events held in the feed window",
                                value=len(hub.window))
        yield GaugeMetricFamily("fsm_events_window_last_index", "log index of the newest entry "
                                "the window has seen", value=hub.window.last)
        yield CounterMetricFamily("fsm_events_watchers_cut_off", "watchers cut off for falling "
                                  "behind", value=hub.cut)
        yield CounterMetricFamily("fsm_events_delivered", "events queued to live watchers",
                                  value=hub.delivered)


def sync_metrics(stats: SyncStats | None) -> Iterator[Metric]:
    """The Raft journal's syncs (--fsync always): count, latency, entries each sync covered."""
    if stats is None:
        return
    yield CounterMetricFamily("fsm_journal_syncs", "fdatasync calls on the Raft journal", value=stats.syncs)
    for name, doc, histogram in (
        ("fsm_journal_sync_duration_seconds", "time one journal sync took", stats.latency),
        ("fsm_journal_entries_per_sync", "Raft entries one journal sync made durable", stats.entries),
    ):
        yield HistogramMetricFamily(name, doc, buckets=histogram.cumulative(), sum_value=histogram.total)


def gc_metrics() -> Iterator[Metric]:
    """The periodic collections of this process (gc_policy): each one stops every thread."""
    pauses = gc_policy.PAUSES
    yield HistogramMetricFamily("fsm_gc_pause_seconds", "time one periodic garbage collection "
                                "stopped the node", buckets=pauses.cumulative(), sum_value=pauses.total)


class Metrics:
    def __init__(self, node: ClusterNode, hub: Any = None, admission: Any = None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fsm_http_requests", "HTTP requests answered", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fsm_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.registry.register(RaftCollector(node))
        if hub is not None:
            self.registry.register(FeedCollector(hub))
        if admission is not None:
            self.registry.register(AdmissionCollector(node, admission))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        # the labelled children, looked up once per (method, route, status): `labels()` checks
        # and builds its label tuple under a lock on every call (docs/BENCHMARKS.md, round
        # nine). Bounded: aiohttp's parser takes only the methods it knows (else 400 before any
        # handler), routes are the table's (or "unmatched"), statuses the API's.
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(method, route, str(status)),
                                              self.latency.labels(method, route))
        children[0].inc()
        children[1].observe(seconds)
