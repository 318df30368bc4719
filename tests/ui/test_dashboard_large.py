"""Pages stay responsive with 100,000 objects (issue 16): lists are paged by the node,
counts per state are one pass, and each page loads in bounded time in a real browser.

Slow (it writes 100,000 objects); run with `pytest -m slow tests/ui/test_dashboard_large.py`.
Prints the timings it measured."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.cluster.harness import Cluster

from .browser import Page
from .conftest import source

TOTAL = 100_000
HELD = 25  # a rare state: a filtered page has to look past almost every object


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("ui-large"), n=3)
    try:
        cluster.start()
        http = cluster.http(0)
        assert http.put("/v1/machines/big", body=source("lock"), content_type="application/yaml").status == 201
        for start in range(0, TOTAL, 1000):
            ops = [{"machine": "big", "id": f"o-{i:06d}", "transition": "create"} for i in range(start, start + 1000)]
            r = http.post("/v1/batch", json={"operations": ops}, headers={})
            assert r.status == 200, r.text[:300]
        ops = [{"machine": "big", "id": f"o-{i * 3999:06d}", "transition": "acquire", "data": {"owner": "w"}}
               for i in range(HELD)]
        assert http.post("/v1/batch", json={"operations": ops}).status == 200
        yield cluster
    finally:
        cluster.stop()


def timed(fn):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


@pytest.mark.slow
def test_api_reads_stay_fast_with_100k_objects(large: Cluster) -> None:
    http = large.http(1)
    reads = {
        "page of 50": "/v1/machines/big/objects?limit=50",
        "page deep (after)": "/v1/machines/big/objects?limit=50&after=o-090000",
        "prefix page": "/v1/machines/big/objects?prefix=o-0999&limit=50",
        "rare state page": "/v1/machines/big/objects?state=held&limit=50",
        "counts per state": "/v1/machines/big/states",
        "diagram with counts": "/v1/machines/big/diagram?format=svg&counts=true",
    }
    for name, path in reads.items():
        best = min(timed(lambda p=path: http.get(p)) for _ in range(3))
        print(f"{name}: {best * 1000:.1f} ms")
        assert best < 2.0, (name, best)
    assert http.get("/v1/machines/big/states").json["states"] == {"free": TOTAL - HELD, "gone": 0, "held": HELD}


@pytest.mark.slow
def test_pages_stay_responsive_with_100k_objects(driver, large: Cluster) -> None:  # type: ignore[no-untyped-def]
    page = Page(driver, large.urls[0])
    for fragment, ready in (
        ("#/machines", "#machine-list tr[data-machine='big'] .chip[data-state='held']"),
        ("#/machines/big", f"#machine-diagram g.count[data-count='{TOTAL - HELD}']"),
        ("#/objects?machine=big", "#object-list tr[data-id='o-000049']"),
        ("#/objects?machine=big&state=held", "#object-list tr[data-id='o-095976']"),
        ("#/objects/big/o-000000", "#object-diagram g.state.current[data-state='held']"),
    ):
        took = timed(lambda f=fragment, r=ready: page.open(f, r))
        print(f"{fragment}: {took * 1000:.0f} ms in the browser")
        assert took < 10, (fragment, took)
    assert page.console_errors() == []
