"""The high-lane probe: what a lock renewal waits while a bulk load overloads the cluster.

During an overload point (batches at many clients) one extra generator process
runs `clients` probe clients beside the load. Each sends one single-object
write at a steady rate (every `interval` seconds, or at once when the previous
answer came late): on fsmcluster a `put` transition with `X-Priority: high` (the
lane that lock renewals and dedup checks use, cluster/api/admission.py); on etcd,
which has no lanes, the same write as a plain put, so the reader sees what the
lane buys. Probe client `i` talks to node `i % 3`, so with two clients one of
them usually goes through a follower (the forward path); the URLs start at the
leader's (`LocalCluster.leader_first`), so client 0 writes through the leader and the
latencies of the others are also kept apart, as those through a follower. A 429 counts
as refused and the probe goes on at its next tick: the refusal itself is the figure.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from .httpwire import HttpConnection, encode_request
from .workloads import MACHINE, b64, key_name

PROBE_KEY_BASE = 900_000  # probe client i writes key k900000+i (created on first use; a put
# without expected_version, so the load writing the same key at 1M keys is no conflict)


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    clients: int = 2
    interval: float = 0.05  # seconds between one probe client's requests (20/s each)


def probe_requests(system: str, client: int, n: int) -> tuple[bytes, ...]:
    """The request(s) probe client `client` sends on its `n`-th tick (n == 0: its set-up)."""
    key = key_name(PROBE_KEY_BASE + client)
    value = f"renewal-{client}-{n}"
    if system == "etcd":
        body = orjson.dumps({"key": b64(key), "value": b64(value)})
        return (encode_request("POST", "/v3/kv/put", body),)
    base = f"/v1/machines/{MACHINE}/objects/{key}/transitions"
    if n == 0:  # create the probe's object (a 409/412 when it exists is fine)
        return (encode_request("POST", f"{base}/create", b"{}"),)
    body = orjson.dumps({"data": {"value": value}})
    return (encode_request("POST", f"{base}/put", body, headers={"X-Priority": "high"}),)


async def drive_probe(system: str, spec: ProbeSpec, urls: tuple[str, ...], start_at: float,
                      t_measure: float, t_end: float, timeout: float) -> dict[str, Any]:
    targets = [urlsplit(urls[i % len(urls)]) for i in range(spec.clients)]
    conns = [await HttpConnection.open(t.hostname or "127.0.0.1", t.port or 80) for t in targets]
    for i, conn in enumerate(conns):
        for raw in probe_requests(system, i, 0):
            await conn.request(raw, timeout)
    counts = {"ok": 0, "refused": 0, "errors": 0}
    latencies: list[float] = []
    via_follower: list[float] = []  # of the clients not on urls[0] (the leader's)
    first_error: list[str] = []

    async def client(i: int, conn: HttpConnection) -> None:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()) + i * spec.interval / spec.clients)
        n = 0
        next_at = time.monotonic()
        while (t0 := time.monotonic()) < t_end:
            n += 1
            (raw,) = probe_requests(system, i, n)
            try:
                if conn.closed:
                    conn = await HttpConnection.open(targets[i].hostname or "127.0.0.1", targets[i].port or 80)
                    conns.append(conn)
                status, body = await conn.request(raw, timeout)
                outcome = "ok" if status == 200 else "refused" if status == 429 else "errors"
                if outcome == "errors" and not first_error:
                    first_error.append(f"{status} {body[:300]!r}")
            except (OSError, TimeoutError, ValueError) as exc:
                outcome = "errors"
                if not first_error:
                    first_error.append(f"{type(exc).__name__}: {exc}")
            t1 = time.monotonic()
            if t_measure <= t0 and t1 <= t_end:
                counts[outcome] += 1
                if outcome == "ok":
                    latencies.append((t1 - t0) * 1000.0)
                    if i % len(urls):
                        via_follower.append((t1 - t0) * 1000.0)
            next_at += spec.interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at, time.monotonic() - spec.interval)  # late: no burst to catch up

    await asyncio.gather(*(client(i, c) for i, c in enumerate(conns)))
    for conn in conns:
        conn.close()
    return {"probe_ok": counts["ok"], "probe_refused": counts["refused"],
            "probe_errors": counts["errors"], "probe_latencies": latencies,
            "probe_follower_latencies": via_follower,
            "probe_first_error": first_error[0] if first_error else None}
