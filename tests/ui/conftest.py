"""Fixtures for the dashboard tests: one live 3-node cluster with example machines and
objects for the whole package, and one headless Chromium per module."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schema_lang import load_example
from tests.cluster.harness import Cluster

from .browser import Page, start_browser

BULK = 3000  # objects of the `bulk` machine: paging must not depend on the total
OPEN_VOTE = """\
states:
  draft: {}
  done: {terminal: true}
transitions:
  create: {from: null, to: draft}
  finish: {from: draft, to: done, votes: {voters: any, quorum: 2}}
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)


def source(name: str) -> str:
    return re.sub(r"^machine:.*\n", "", load_example(name), flags=re.MULTILINE)


def seed(cluster: Cluster) -> None:
    http = cluster.http(0)
    for name, example in (("lock", "lock"), ("approval", "approval"), ("bulk", "lock"),
                          ("deploy", "deploy")):
        r = http.put(f"/v1/machines/{name}", body=source(example), content_type="application/yaml")
        assert r.status in (200, 201), r
    r = http.put("/v1/machines/open-vote", body=OPEN_VOTE, content_type="application/yaml")
    assert r.status == 201, r
    for i in range(1, 6):
        assert http.post(f"/v1/machines/lock/objects/l-{i}/transitions/create", json={}).status == 201
    for i in (1, 2):
        r = http.post(f"/v1/machines/lock/objects/l-{i}/transitions/acquire", json={"data": {"owner": f"w{i}"}})
        assert r.status == 200, r
    r = http.post("/v1/machines/approval/objects/req-1/transitions/create", json={"data": {"title": "Ship it"}})
    assert r.status == 201, r
    for start in range(0, BULK, 1000):
        ops = [{"machine": "bulk", "id": f"b-{i:05d}", "transition": "create"}
               for i in range(start, min(start + 1000, BULK))]
        r = http.post("/v1/batch", json={"operations": ops})
        assert r.status == 200 and all(x["status"] == 201 for x in r.json["results"]), r.text[:300]


@pytest.fixture(scope="package")
def ui_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("ui"), n=3)
    try:
        cluster.start()
        seed(cluster)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    browser = start_browser()
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def page(driver: Any, ui_cluster: Cluster) -> Page:
    return Page(driver, ui_cluster.urls[1])  # a follower or the leader: every node serves it
