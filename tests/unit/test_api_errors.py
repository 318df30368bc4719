"""The error table of SPEC 4.9 and the JSON error body."""

from __future__ import annotations

import orjson
import pytest

from cluster.api.errors import STATUS_BY_CODE, ApiError, error_response, outcome_status, status_for
from cluster.core.outcome import Outcome, Rejection

SPEC_TABLE = {
    400: ["invalid_request", "invalid_schema", "invalid_id"],
    401: ["unauthorized"],
    403: ["forbidden", "not_a_voter"],
    404: ["machine_not_found", "object_not_found", "transition_not_found", "not_found"],
    409: ["transition_not_allowed", "object_exists", "pending_change", "terminal_state",
          "vote_conflict", "stale_change", "machine_in_use"],
    410: ["gone"],
    412: ["version_conflict"],
    413: ["payload_too_large"],
    422: ["guard_failed", "idempotency_key_reused"],
    429: ["overloaded"],
    503: ["unavailable"],
    504: ["timeout"],
}


@pytest.mark.parametrize(
    ("code", "status"), [(code, status) for status, codes in SPEC_TABLE.items() for code in codes]
)
def test_every_spec_code_has_its_status(code: str, status: int) -> None:
    assert status_for(code) == status
    assert STATUS_BY_CODE[code] == status


def test_an_unknown_code_is_a_server_error() -> None:
    assert status_for("no_such_code") == 500


@pytest.mark.parametrize(
    ("status", "http"), [("created", 201), ("applied", 200), ("pending", 202), ("ok", 200)]
)
def test_outcome_statuses(status: str, http: int) -> None:
    assert outcome_status(Outcome(status)) == http  # type: ignore[arg-type]


def test_a_rejected_outcome_takes_the_status_of_its_code() -> None:
    outcome = Outcome.rejected(Rejection("version_conflict", "expected 3, found 4"))
    assert outcome_status(outcome) == 412


def test_error_body_shape_and_retry_after() -> None:
    response = error_response(ApiError("unavailable", "no leader", [{"why": "election"}]))
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert response.content_type == "application/json"
    assert orjson.loads(response.body) == {  # type: ignore[arg-type]
        "error": {"code": "unavailable", "message": "no leader", "details": [{"why": "election"}]}
    }
