"""The benchmark workloads, for fsmcluster and for etcd, as request drivers.

A driver lives in one load-generator process. `next_request()` returns the
encoded request and a context; `record(context, status, body)` says how the
answer counts: (outcome, operations). Both systems get the same key choice,
value size and closed-loop shape, so their figures compare:

| kind  | fsmcluster                                       | etcd (JSON gateway)                   |
|-------|--------------------------------------------------|---------------------------------------|
| cas   | transition `put` with `expected_version`         | txn: compare mod_revision, put        |
| read  | GET object (linearizable, the default)           | range (linearizable, the default)     |
| mix   | 90 % read, 10 % cas                              | 90 % range, 10 % txn                  |
| batch | POST /v1/batch, 100 `put` transitions, `Prefer: return=minimal` | txn with 100 puts (no compare) |

Keys are `k000000`... Each generator process owns the keys `i % processes ==
index`, so processes never race each other; workers inside a process rarely do
(a failed compare counts as a conflict, not as an operation).
"""

from __future__ import annotations

import base64
import random
import string
from dataclasses import dataclass
from typing import Any

import orjson

from .httpwire import encode_request

OK, CONFLICT, ERROR = "ok", "conflict", "error"
MACHINE = "register"
# the machine the fsmcluster workloads drive: one state, a guarded `put`
REGISTER_MACHINE = """\
machine: register
description: a versioned register, the benchmark's counterpart of an etcd key
history: 10
states:
  v: {}
transitions:
  create: {from: null, to: v}
  put:
    from: v
    $dst: {value: {type: string, required: true, max_length: 256}}
"""
KINDS = ("cas", "read", "mix", "batch")
# a batch asks for each object's summary, not the whole object: etcd's txn answers each put
# with a header and revision, not the value (docs/BENCHMARKS.md, round eight)
MINIMAL = {"Prefer": "return=minimal"}
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    system: str  # "fsm" | "etcd"
    kind: str  # one of KINDS
    keys: int = 10_000
    batch_size: int = 100
    read_share: float = 0.9
    value_size: int = 64
    seed: int = 1


def key_name(i: int) -> str:
    return f"k{i:06d}"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Driver:
    """Requests for one generator process; subclasses speak one system's API."""

    def __init__(self, spec: WorkloadSpec, index: int, processes: int) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed * 1000 + index)
        self.owned = range(index, spec.keys, processes)
        self.versions: dict[int, int] = {}
        self._pad = "v" * (spec.value_size - 8)

    def value(self) -> str:
        return "".join(self.rng.choices(_ALPHABET, k=8)) + self._pad

    def pick(self) -> int:
        return self.owned[self.rng.randrange(len(self.owned))]

    def next_request(self) -> tuple[bytes, Any]:
        kind = self.spec.kind
        if kind == "mix":
            kind = "read" if self.rng.random() < self.spec.read_share else "cas"
        if kind == "read":
            key = self.pick()
            return self.read(key), ("read", key)
        if kind == "cas":
            key = self.pick()
            return self.cas(key), ("cas", key)
        keys = self.rng.sample(self.owned, min(self.spec.batch_size, len(self.owned)))
        return self.batch(keys), ("batch", keys)

    def record(self, context: Any, status: int, body: bytes) -> tuple[str, int]:
        kind, key = context
        if kind == "read":
            return (OK, 1) if status == 200 else (ERROR, 0)
        if kind == "cas":
            return self.cas_done(key, status, body)
        return self.batch_done(key, status, body)

    # what a subclass provides
    def prepare_requests(self) -> list[bytes]:
        return []

    def prepared(self, status: int, body: bytes) -> None:
        pass

    def read(self, key: int) -> bytes:
        raise NotImplementedError

    def cas(self, key: int) -> bytes:
        raise NotImplementedError

    def batch(self, keys: list[int]) -> bytes:
        raise NotImplementedError

    def cas_done(self, key: int, status: int, body: bytes) -> tuple[str, int]:
        raise NotImplementedError

    def batch_done(self, keys: list[int], status: int, body: bytes) -> tuple[str, int]:
        raise NotImplementedError


class FsmDriver(Driver):
    base = f"/v1/machines/{MACHINE}/objects"

    def prepare_requests(self) -> list[bytes]:
        # learn current versions (like etcd's STM clients do); beyond 100k keys
        # every object starts at version 1 and a conflict teaches the rest
        if self.spec.kind in ("read", "batch") or self.spec.keys > 100_000:
            return []
        pages = (self.spec.keys + 999) // 1000
        return [
            encode_request("GET", f"{self.base}?limit=1000&consistency=stale"
                           + (f"&after={key_name(p * 1000 - 1)}" if p else ""))
            for p in range(pages)
        ]

    def prepared(self, status: int, body: bytes) -> None:
        if status == 200:
            for obj in orjson.loads(body)["objects"]:
                self.versions[int(obj["id"][1:])] = int(obj["version"])

    def read(self, key: int) -> bytes:
        return encode_request("GET", f"{self.base}/{key_name(key)}")

    def cas(self, key: int) -> bytes:
        body = {"data": {"value": self.value()}, "expected_version": self.versions.get(key, 1)}
        return encode_request("POST", f"{self.base}/{key_name(key)}/transitions/put",
                              orjson.dumps(body))

    def cas_done(self, key: int, status: int, body: bytes) -> tuple[str, int]:
        if status == 200:
            self.versions[key] = int(orjson.loads(body)["object"]["version"])
            return OK, 1
        if status == 412:
            self.versions[key] = int(orjson.loads(body)["error"]["details"][0]["actual"])
            return CONFLICT, 0
        return ERROR, 0

    def batch(self, keys: list[int]) -> bytes:
        ops = [{"machine": MACHINE, "id": key_name(k), "transition": "put",
                "data": {"value": self.value()}} for k in keys]
        return encode_request("POST", "/v1/batch", orjson.dumps({"operations": ops}), MINIMAL)

    def batch_done(self, keys: list[int], status: int, body: bytes) -> tuple[str, int]:
        if status != 200:
            return ERROR, 0
        applied = sum(1 for r in orjson.loads(body)["results"] if r["status"] == 200)
        return (OK, applied) if applied else (ERROR, 0)


class EtcdDriver(Driver):
    def prepare_requests(self) -> list[bytes]:
        if self.spec.kind not in ("cas", "mix"):
            return []
        body = {"key": b64("k"), "range_end": b64("l"), "keys_only": True}
        return [encode_request("POST", "/v3/kv/range", orjson.dumps(body))]

    def prepared(self, status: int, body: bytes) -> None:
        if status == 200:
            for kv in orjson.loads(body).get("kvs", []):
                self.versions[int(base64.b64decode(kv["key"])[1:])] = int(kv["mod_revision"])

    def read(self, key: int) -> bytes:
        return encode_request("POST", "/v3/kv/range", orjson.dumps({"key": b64(key_name(key))}))

    def cas(self, key: int) -> bytes:
        k = b64(key_name(key))
        body = {
            "compare": [{"target": "MOD", "result": "EQUAL", "key": k,
                         "mod_revision": str(self.versions.get(key, 0))}],
            "success": [{"request_put": {"key": k, "value": b64(self.value())}}],
            "failure": [{"request_range": {"key": k}}],
        }
        return encode_request("POST", "/v3/kv/txn", orjson.dumps(body))

    def cas_done(self, key: int, status: int, body: bytes) -> tuple[str, int]:
        if status != 200:
            return ERROR, 0
        answer = orjson.loads(body)
        if answer.get("succeeded"):
            self.versions[key] = int(answer["header"]["revision"])
            return OK, 1
        kvs = answer["responses"][0]["response_range"].get("kvs", [])
        self.versions[key] = int(kvs[0]["mod_revision"]) if kvs else 0
        return CONFLICT, 0

    def batch(self, keys: list[int]) -> bytes:
        puts = [{"request_put": {"key": b64(key_name(k)), "value": b64(self.value())}} for k in keys]
        return encode_request("POST", "/v3/kv/txn", orjson.dumps({"success": puts}))

    def batch_done(self, keys: list[int], status: int, body: bytes) -> tuple[str, int]:
        return (OK, len(keys)) if status == 200 else (ERROR, 0)


def make_driver(spec: WorkloadSpec, index: int, processes: int) -> Driver:
    return (FsmDriver if spec.system == "fsm" else EtcdDriver)(spec, index, processes)
