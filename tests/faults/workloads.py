"""Workloads recorded as histories while a nemesis runs, and the run that checks them.

- `RegisterWorkload`: versioned objects; linearizable reads and compare-and-set
  transitions on `expected_version` (plus blind writes), checked against
  `VersionedRegister` with the machine's transition table and its data.
- `LockWorkload`: the SPEC lock (lease made longer than any run); acquire,
  renew, release and reads per owner, checked against `LockModel` (no two
  holders, fencing tokens = versions rising by exactly 1), and every granted
  fencing token is unique.
- `DedupWorkload`: consumers racing to `see` message ids, retrying through
  timeouts with their own `Idempotency-Key`; checked against `Dedup`, then
  every message acknowledged as accepted must exist, received by that consumer.

`run_workload(cluster, workload, seconds, nemesis)` drives clients spread over
every node, runs the nemesis schedule meanwhile, heals, reads every key on
every node, and returns a `Report` with the checker's verdict and the figures.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from tests.cluster.conftest import lock_source
from tests.cluster.harness import Cluster
from tests.faults.clients import DEFINITE, NOT_APPLIED, Client, Figures, high_lane, refusal
from tests.faults.linearizability import Dedup, History, LockModel, Result, VersionedRegister, check
from tests.faults.models import Model, detail_of, status_of
from tests.faults.nemesis import Nemesis

REGISTER_YAML = """\
description: A versioned register for linearizability tests
history: 5
states:
  a: {}
  b: {}
transitions:
  create: {from: null, to: a}
  to_a: {from: [a, b], to: a}
  to_b: {from: [a, b], to: b}
  write: {from: [a, b]}
"""
REGISTER_TABLE = {"create": {None}, "to_a": {"a", "b"}, "to_b": {"a", "b"}, "write": {"a", "b"}}
DEDUP_YAML = """\
description: One object per message id
history: 5
states:
  seen:
    data:
      received_by: {type: string, max_length: 200}
transitions:
  see: {from: null, to: seen}
"""


class Workload:
    """Base: a machine, a set of keys, one `step` per client operation, a model."""

    name = "workload"
    machine = "m"
    source = ""
    final_read_everywhere = True  # False: each key read on one node after healing (many keys)

    def __init__(self, keys: int, seed: int = 0) -> None:
        self.prefix = f"{self.name}{seed}"  # distinct keys per seed: runs can share a cluster
        self.keys = [f"{self.prefix}-{k}" for k in range(keys)]
        self.history = History()
        self.rng = random.Random(seed)

    def path(self, key: str) -> str:
        return f"/v1/machines/{self.machine}/objects/{key}"

    def model(self) -> Model:
        raise NotImplementedError

    def setup(self, client: Client) -> None:
        for _ in range(20):
            state, response = client.send(
                "PUT", f"/v1/machines/{self.machine}", body=self.source, content_type="application/yaml"
            )
            if state == DEFINITE and response is not None and response.status in (200, 201):
                return
            time.sleep(0.5)
        raise RuntimeError(f"could not store machine {self.machine}")

    def step(self, client: Client, rng: random.Random) -> None:
        raise NotImplementedError

    def read(self, client: Client, key: str, stale: bool = False) -> bool:
        """One read, recorded; False when it got no definite answer (then it is discarded)."""
        op = self.history.invoke(client.process, key, "read")
        state, response = client.send("GET", self.path(key) + ("?consistency=stale" if stale else ""))
        if state != DEFINITE or response is None:
            self.history.discard(op)  # a read that did not answer had no effect
            client.figures.count("read-unavailable")
            return False
        if response.status == 200:
            self.history.complete(op, self.read_output(response.json))
        elif response.error_code == "object_not_found":
            self.history.complete(op, self.absent_output())
        else:
            self.history.discard(op)
            client.figures.note_unexpected(f"read {key} -> {response!r}")
            return False
        client.figures.count("read")
        return True

    def read_output(self, obj: dict[str, Any]) -> Any:
        return (obj["state"], obj["version"], obj["data"])

    def absent_output(self) -> Any:
        return "not_found"

    def extra_checks(self, figures: Figures) -> None:
        """Anomalies the model does not express; appended to `figures.anomalies`."""

    def record_write(self, client: Client, key: str, kind: str, input: Any, path: str,
                     body: dict[str, Any]) -> Any:
        """One write, recorded; returns the output (None when not applied or unknown)."""
        op = self.history.invoke(client.process, key, kind, input)
        state, response = client.write(path, body)
        if state == NOT_APPLIED:
            self.history.discard(op)
            client.figures.count("write-unavailable")
            return None
        if state != DEFINITE or response is None:
            self.history.timeout(op)
            client.figures.count("write-indeterminate")
            return None
        output = ("ok", response.json["object"]["version"]) if response.status < 300 else refusal(response)
        self.history.complete(op, output)
        client.figures.count("write-ok" if status_of(output) == "ok" else "write-refused")
        return output


class RegisterWorkload(Workload):
    name = "reg"
    machine = "register"
    source = REGISTER_YAML

    def __init__(self, keys: int = 4, seed: int = 0) -> None:
        super().__init__(keys, seed)
        self.seen: dict[tuple[str, str], int] = {}

    def model(self) -> Model:
        return VersionedRegister(REGISTER_TABLE)

    def setup(self, client: Client) -> None:
        super().setup(client)
        for key in self.keys:
            for _ in range(40):
                out = self.record_write(client, key, "transition", ("create", None, "a", None),
                                        self.path(key) + "/transitions/create", {})
                if out is not None:
                    break
                time.sleep(0.25)

    def step(self, client: Client, rng: random.Random) -> None:
        key = rng.choice(self.keys)
        if rng.random() < 0.4:
            self.read(client, key)
            return
        name = rng.choice(["to_a", "to_b", "write"])
        target = {"to_a": "a", "to_b": "b", "write": None}[name]
        data = {"v": rng.randrange(5)}
        expected = None if rng.random() < 0.2 else self.seen.get((client.name, key), 1)
        body: dict[str, Any] = {"data": data}
        if expected is not None:
            body["expected_version"] = expected
        out = self.record_write(client, key, "transition", (name, expected, target, data),
                                f"{self.path(key)}/transitions/{name}", body)
        if status_of(out) in ("ok", "version_conflict") and isinstance(detail_of(out), int):
            self.seen[(client.name, key)] = detail_of(out)


class LockWorkload(Workload):
    name = "lock"
    machine = "lock"
    source = re.sub(r"after: *30s", "after: 1h", lock_source())  # expiry is not modelled

    def __init__(self, keys: int = 3, seed: int = 0) -> None:
        super().__init__(keys, seed)
        self.holding: set[tuple[str, str]] = set()

    def model(self) -> Model:
        return LockModel(initial_version=1)

    def setup(self, client: Client) -> None:
        super().setup(client)
        for key in self.keys:  # outside the history: LockModel starts from a created, free lock
            for _ in range(40):
                state, response = client.write(self.path(key) + "/transitions/create", {},
                                               idempotency_key=f"create-{key}")
                if state == DEFINITE and response is not None and (
                    response.status == 201 or response.error_code == "object_exists"
                ):
                    break
                time.sleep(0.25)
            else:
                raise RuntimeError(f"could not create lock {key}")

    def read_output(self, obj: dict[str, Any]) -> Any:
        holder = obj["data"].get("owner") if obj["state"] == "held" else None
        return (holder, obj["version"])

    def step(self, client: Client, rng: random.Random) -> None:
        key = rng.choice(self.keys)
        owner = client.name
        if rng.random() < 0.25:
            self.read(client, key)
            return
        if (owner, key) in self.holding:
            kind = "release" if rng.random() < 0.6 else "renew"
        else:
            kind = "acquire"
        out = self.record_write(client, key, kind, owner, f"{self.path(key)}/transitions/{kind}",
                                {"data": {"owner": owner}})
        if out is None:
            self.holding.discard((owner, key))  # unknown: the model decides; stop assuming
        elif status_of(out) == "ok":
            (self.holding.discard if kind == "release" else self.holding.add)((owner, key))

    def extra_checks(self, figures: Figures) -> None:
        tokens: dict[Hashable, list[int]] = {}
        for op in self.history.operations():
            if op.kind == "acquire" and not op.indeterminate and status_of(op.output) == "ok":
                tokens.setdefault(op.key, []).append(op.output[1])
        for key, granted in tokens.items():
            if len(granted) != len(set(granted)):
                figures.anomalies.append(f"{key}: a fencing token was granted twice: {sorted(granted)}")


class DedupWorkload(Workload):
    """Consumers see message ids (several consumers per id); each id accepted once."""

    name = "msg"
    machine = "dedup"
    source = DEDUP_YAML
    RETRIES = 6
    final_read_everywhere = False

    def __init__(self, keys: int = 0, seed: int = 0) -> None:
        super().__init__(keys, seed)
        self.next_message = 0
        self.lock = threading.Lock()
        self.accepted: dict[str, str] = {}  # message -> consumer acknowledged as its receiver

    def model(self) -> Model:
        return Dedup()

    def absent_output(self) -> Any:
        return False

    def read_output(self, obj: dict[str, Any]) -> Any:
        return True

    def _message(self, rng: random.Random) -> str:
        with self.lock:
            if self.next_message == 0 or rng.random() < 0.5:
                self.next_message += 1
                self.keys.append(f"{self.prefix}-{self.next_message}")
            return f"{self.prefix}-{rng.randrange(max(1, self.next_message - 3), self.next_message + 1)}"

    def step(self, client: Client, rng: random.Random) -> None:
        message = self._message(rng)
        op = self.history.invoke(client.process, message, "create")
        path = f"{self.path(message)}/transitions/see"
        key = f"{message}/{client.name}/{op}"  # a new key per operation, the same for its retries
        maybe_applied = False
        for _ in range(self.RETRIES):  # one operation: retries carry the same key
            state, response = client.write(path, {"data": {"received_by": client.name}},
                                           idempotency_key=key)
            if state == DEFINITE and response is not None:
                ok = response.status == 201
                self.history.complete(op, "ok" if ok else refusal(response))
                client.figures.count("see-accepted" if ok else "see-duplicate")
                if ok:
                    with self.lock:
                        self.accepted[message] = client.name
                return
            maybe_applied = maybe_applied or state != NOT_APPLIED
            client.figures.count("see-retry")
            time.sleep(0.2)
        if maybe_applied:
            self.history.timeout(op)
            client.figures.count("see-indeterminate")
        else:
            self.history.discard(op)

    def read(self, client: Client, key: str, stale: bool = False) -> bool:
        op = self.history.invoke(client.process, key, "contains")
        state, response = client.send("GET", self.path(key))
        if state != DEFINITE or response is None or response.status not in (200, 404):
            self.history.discard(op)
            return False
        self.history.complete(op, response.status == 200)
        if response.status == 200 and key in self.accepted:
            got = response.json["data"].get("received_by")
            if got != self.accepted[key]:
                client.figures.anomalies.append(
                    f"{key}: acknowledged to {self.accepted[key]} but received_by is {got!r}")
        return True


@dataclass
class Report:
    workload: str
    result: Result
    figures: Figures
    faults: str
    fault_count: int
    seconds: float

    @property
    def anomalies(self) -> int:
        return len(self.figures.anomalies) + (0 if self.result.ok else 1) + len(self.figures.unexpected)

    def summary(self) -> str:
        return (
            f"[{self.workload}] {self.seconds:.0f}s: {self.figures.summary()}; "
            f"faults {self.fault_count} ({self.faults}); checker {self.result.verdict} "
            f"({self.result.ops_checked} ops, {self.result.steps} steps); anomalies {self.anomalies}"
        )

    def failure(self) -> str:
        lines = [self.summary(), self.result.explanation]
        lines += [f"anomaly: {a}" for a in self.figures.anomalies]
        lines += [f"unexpected: {u}" for u in self.figures.unexpected[:20]]
        return "\n".join(lines)


def run_workload(
    cluster: Cluster,
    workload: Workload,
    seconds: float,
    nemesis: Nemesis | None = None,
    kinds: Sequence[str] = (),
    clients: int = 6,
    seed: int = 0,
) -> Report:
    """Run `clients` threads for `seconds` while the nemesis injects `kinds`; then
    heal, read every key on every node, and check the history."""
    figures = Figures()
    urls = cluster.urls
    setup_client = Client("setup", urls, 0, figures)
    workload.setup(setup_client)
    setup_client.close()
    stop, nemesis_stop = threading.Event(), threading.Event()
    started = time.monotonic()
    faults_before = nemesis.total if nemesis else 0

    def client_loop(index: int) -> None:
        client = Client(f"c{index}", urls, index, figures, high=high_lane(index))
        rng = random.Random(seed * 1000 + index)
        try:
            while not stop.is_set():
                workload.step(client, rng)
        finally:
            client.close()

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
    if nemesis is not None and kinds:
        threads.append(threading.Thread(target=nemesis.run, args=(nemesis_stop, kinds), daemon=True))
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    nemesis_stop.set()
    stop.set()
    for thread in threads:
        thread.join(timeout=90)
    if nemesis is not None:
        nemesis.heal()
    final_reads(cluster, workload, figures)
    workload.extra_checks(figures)
    result = check(workload.history.operations(), workload.model())
    return Report(workload.name, result, figures,
                  nemesis.describe() if nemesis else "none",
                  nemesis.total - faults_before if nemesis else 0,
                  time.monotonic() - started)


def final_reads(cluster: Cluster, workload: Workload, figures: Figures) -> None:
    """After healing: a linearizable read of every key on every node, into the history."""
    for i in range(cluster.n):
        client = Client(f"final{i}", [cluster.urls[i]], 0, figures)
        try:
            for k, key in enumerate(list(workload.keys)):
                if not workload.final_read_everywhere and k % cluster.n != i:
                    continue
                for _ in range(40):
                    if workload.read(client, key):
                        break
                    time.sleep(0.25)
                else:
                    figures.anomalies.append(f"node {i} never answered a read of {key} after healing")
        finally:
            client.close()
