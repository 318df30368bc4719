"""docs/API.md documents every path and method of the OpenAPI document the nodes serve."""

from __future__ import annotations

import re
from pathlib import Path

from cluster.api.app import build_app
from cluster.api.context import OPENAPI
from cluster.config import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "API.md"


def test_every_openapi_operation_is_in_api_md(tmp_path: Path) -> None:
    settings = Settings(raft="127.0.0.1:1", http="127.0.0.1:2", data_dir=tmp_path)
    doc = build_app(object(), settings)[OPENAPI]  # type: ignore[arg-type]  # the node is not used
    text = DOC.read_text()
    documented = set(re.findall(r"`(GET|PUT|POST|DELETE|PATCH) (/[^`?\s]*)`", text))
    served = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert served, "the OpenAPI document lists no paths"
    missing = sorted(served - documented)
    assert not missing, f"docs/API.md does not document: {missing}"
