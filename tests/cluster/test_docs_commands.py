"""The commands in the README, docs/OPERATIONS.md and docs/API.md run as written.

Every fenced block marked `sh` is run by bash (`set -euo pipefail`) against a local
3-node cluster, the way `./scripts/up` starts one: the lock example applied, the
`fsmcluster` command on PATH, and the documented addresses `http://127.0.0.1:810N`
pointing at this test's nodes (ports are chosen free; `FSM_URL` names them too).
Blocks not marked `sh` (a node's start command, paths of a real deployment) are
shown, not run. The same cluster checks that OPERATIONS.md describes every metric
and every node flag.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster import config
from schema_lang import load_example

from .harness import ROOT, Cluster

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(240)]
DOCS = [ROOT / "README.md", ROOT / "docs" / "OPERATIONS.md", ROOT / "docs" / "API.md"]
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def sh_blocks(path: Path) -> list[str]:
    return [body for lang, body in BLOCK.findall(path.read_text()) if lang == "sh"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("docs"), n=3) as started:
        r = started.http(0).put("/v1/machines/lock", body=load_example("lock"), content_type="application/yaml")
        assert r.status in (200, 201), r
        yield started


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_sh_blocks_run_as_written(cluster: Cluster, doc: Path, tmp_path: Path) -> None:
    blocks = sh_blocks(doc)
    assert blocks, f"{doc.name} has no sh block"
    script = "\n".join(blocks)
    for n, url in enumerate(cluster.urls, start=1):
        script = script.replace(f"http://127.0.0.1:810{n}", url)
    (tmp_path / "lock.yaml").write_text(load_example("lock"))
    env = {**os.environ, "FSM_URL": ",".join(cluster.urls),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, f"{doc.name}: exit {run.returncode}\n{script}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"


def test_operations_md_describes_every_metric_and_flag(cluster: Cluster) -> None:
    text = (ROOT / "docs" / "OPERATIONS.md").read_text()
    metrics = cluster.http(0).get("/metrics").text
    names = {m.removesuffix("_total") for m in re.findall(r"^# TYPE (fsm_\w+) ", metrics, re.MULTILINE)
             if not m.endswith("_created")}  # prometheus_client's creation-time series
    missing = sorted(n for n in names if n not in text)
    assert not missing, f"metrics not described in docs/OPERATIONS.md: {missing}"
    flags = [f"--{name}" for name in config._OPTIONS] + ["--peer", "--log-level"]
    undocumented = [f for f in flags if f"`{f}`" not in text]
    assert not undocumented, f"node flags not in docs/OPERATIONS.md settings: {undocumented}"
