"""Fixtures for tests that run real node processes (see harness.py for the API).

- `cluster3`: one 3-node cluster per test module (route tests share it; give each
  test its own machine names / object ids).
- `make_cluster(n=3, **kw)`: a fresh cluster per test (fault tests); stopped after it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from schema_lang import load_example

from .harness import Cluster

LOCK_YAML = load_example("lock")  # SPEC section 3, verbatim


def lock_source() -> str:
    """The SPEC's lock machine without its `machine:` line, to store under any name."""
    try:
        from schema_lang import load_example

        text = load_example("lock")
    except (ImportError, FileNotFoundError, KeyError):
        text = LOCK_YAML
    return re.sub(r"^machine:.*\n", "", text, flags=re.MULTILINE)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="module")
def cluster3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("cluster3"), n=3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    started: list[Cluster] = []

    def make(n: int = 3, start: bool = True, **kw: Any) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(started)}", n=n, **kw)
        started.append(cluster)
        if start:
            cluster.start()
        return cluster

    try:
        yield make
    finally:
        for cluster in started:
            cluster.stop()
