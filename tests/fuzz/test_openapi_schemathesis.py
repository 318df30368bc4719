"""schemathesis against `/v1/openapi.json` on a live 3-node cluster.

Every operation the API describes is called with generated requests, valid and
invalid ones, within a fixed budget. A failing test is any 5xx other than the
documented 503/504, or a response whose status, content type or body the
description does not allow. Membership changes are left out: a generated
`POST /v1/cluster/members` would add a member that does not exist and could
cost the cluster its quorum (they are covered by tests/cluster).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.cluster.conftest import lock_source
from tests.cluster.harness import Cluster, Http

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def live_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("fuzz"), n=3)
    try:
        cluster.start()
        http = Http(cluster.leader_url())
        assert http.put("/v1/machines/lock", body=lock_source(), content_type="application/yaml").status in (200, 201)
        http.post("/v1/machines/lock/objects/a/transitions/create", json={})
        http.close()
        yield cluster
    finally:
        cluster.stop()


def operations(cluster: Cluster) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{cluster.urls[0]}/v1/openapi.json")
    schema = schema.exclude(path_regex="^/v1/cluster/members")
    return [result.ok() for result in schema.get_all_operations()]


def fuzz_operation(operation: schemathesis.APIOperation, mode: GenerationMode, base_url: str) -> None:
    """Up to MAX_EXAMPLES generated requests; hypothesis shrinks the first failure."""

    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=30)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["valid-requests", "invalid-requests"])
def test_api_conforms_to_its_openapi_description(live_cluster: Cluster, mode: GenerationMode) -> None:
    failures = []
    ops = operations(live_cluster)
    assert len(ops) > 20
    for operation in ops:
        try:
            fuzz_operation(operation, mode, live_cluster.urls[0])
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to get wrong in GET /healthz
        except Exception as exc:  # collect every operation's failure, then fail once
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    print(f"{len(ops)} operations x {MAX_EXAMPLES} {mode.value} examples; failures {len(failures)}")
    assert not failures, "\n\n".join(failures)
