"""Admission control under overload (SPEC 4.8/4.9): the excess gets 429 with Retry-After,
the high lane (X-Priority: high, or a machine with `priority: high`) is still admitted and fast."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import aiohttp
import pytest

from tests.cluster.harness import Cluster
from tests.faults.workloads import REGISTER_YAML

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]
BULK_CLIENTS = 24
SECONDS = 4.0
HIGH_MACHINE = "machine: renewals\npriority: high\n" + REGISTER_YAML


async def drive(url: str) -> dict[str, list]:  # type: ignore[type-arg]
    seen: dict[str, list] = {"bulk": [], "bulk_429": [], "high": [], "high_status": []}  # type: ignore[type-arg]
    stop_at = time.monotonic() + SECONDS

    async def bulk(session: aiohttp.ClientSession, c: int) -> None:
        n = 0
        while time.monotonic() < stop_at:
            ops = [{"machine": "register", "id": f"b{c}-{n}-{i}", "transition": "create"} for i in range(100)]
            n += 1
            started = time.monotonic()
            async with session.post(f"{url}/v1/batch", json={"operations": ops}) as r:
                await r.read()
                if r.status == 429:
                    seen["bulk_429"].append(r.headers.get("Retry-After"))
                    await asyncio.sleep(0.2)  # clients back off (less than Retry-After)
                else:
                    assert r.status == 200, (r.status, await r.text())
                    seen["bulk"].append(time.monotonic() - started)

    async def high(session: aiohttp.ClientSession) -> None:
        n = 0
        await asyncio.sleep(0.5)  # once the bulk load is on
        while time.monotonic() < stop_at:
            n += 1
            # by header on a normal machine, and by the machine's default without a header
            for path, headers in ((f"/v1/machines/register/objects/h{n}/transitions/create",
                                   {"X-Priority": "high"}),
                                  (f"/v1/machines/renewals/objects/r{n}/transitions/create", {})):
                started = time.monotonic()
                async with session.post(url + path, json={}, headers=headers) as r:
                    await r.read()
                    seen["high_status"].append(r.status)
                    seen["high"].append(time.monotonic() - started)
            await asyncio.sleep(0.02)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(bulk(session, c) for c in range(BULK_CLIENTS)), high(session))
    return seen


def test_overload_is_refused_with_429_and_the_high_lane_stays_fast(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, n=3, extra_args=("--max-in-flight", "300", "--max-in-flight-high", "50"))
    with cluster:
        leader = cluster.leader_index()
        http = cluster.http(leader)
        for name, text in (("register", REGISTER_YAML), ("renewals", HIGH_MACHINE)):
            assert http.put(f"/v1/machines/{name}", body=text,
                            content_type="application/yaml").status in (200, 201)
        seen = asyncio.run(drive(cluster.nodes[leader].url))
        print(f"bulk: {len(seen['bulk'])} admitted, {len(seen['bulk_429'])} refused; "
              f"high: {len(seen['high'])}, median {statistics.median(seen['high']) * 1000:.1f} ms, "
              f"max {max(seen['high']) * 1000:.1f} ms; bulk median "
              f"{statistics.median(seen['bulk']) * 1000:.1f} ms")
        assert seen["bulk_429"], "24 clients of 100-operation batches never exceeded 300 in flight"
        assert set(seen["bulk_429"]) == {"1"}, "every 429 says when to retry"
        assert seen["bulk"], "nothing of the bulk load was admitted"
        assert set(seen["high_status"]) == {201}, "the high lane must not be refused"
        # loose bounds (a shared 2-core box whose other tenants can starve the node): the
        # point is that the high lane does not wait behind the bulk queue for seconds
        assert statistics.median(seen["high"]) < 2.0 and max(seen["high"]) < 5.0
        metrics = http.get("/metrics").text
        assert 'fsm_admission_rejected_total{lane="normal"}' in metrics
        assert 'fsm_admission_rejected_total{lane="high"} 0.0' in metrics
