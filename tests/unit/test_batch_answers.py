"""A batch's answer (SPEC 4.6): each operation's result is `{"status", "object"}` or
`{"status", "error"}`, rendered from the outcome the engine returned."""

from __future__ import annotations

import orjson

from cluster.api.responses import outcome_response
from cluster.core.engine import apply
from cluster.core.entries import Batch, Entry, PutMachine, Transition
from cluster.core.state import ClusterState
from schema_lang import load_example


def test_each_result_is_its_status_and_object_or_error() -> None:
    state = ClusterState()
    apply(state, Entry(PutMachine("lock", load_example("lock")), at_ms=1))
    ops = (
        Transition("lock", "a", "create"),
        Transition("lock", "a", "acquire", {"owner": "w1"}),
        Transition("lock", "a", "acquire", {"owner": "w2"}),  # held: refused
    )
    outcome = apply(state, Entry(Batch(ops), at_ms=2, index=2))
    answer = outcome_response(outcome)
    assert answer.status == 200
    results = orjson.loads(answer.body)["results"]
    assert [r["status"] for r in results] == [201, 200, 409]
    assert [sorted(r) for r in results] == [["object", "status"], ["object", "status"], ["error", "status"]]
    assert results[1]["object"]["state"] == "held" and results[1]["object"]["version"] == 2
    assert results[2]["error"]["code"] == "transition_not_allowed"
