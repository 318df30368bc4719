"""Wrong answers to hostile or careless requests, end to end (issue 17, items 11, 13)."""

from __future__ import annotations

import pytest

from cluster.client import AsyncClient, Lock, errors

from .conftest import lock_source
from .harness import Cluster

pytestmark = pytest.mark.cluster


async def test_a_lock_destroyed_and_created_again_never_hands_out_a_smaller_token(
    cluster3: Cluster,
) -> None:
    async with AsyncClient(cluster3.urls) as fsm:
        await fsm.put_machine("fence", lock_source())
        holder = Lock(fsm, "db-1", "w1", machine="fence")
        await holder.acquire()
        await holder.release()
        stale = await holder.acquire()  # token 4: create, acquire, release, acquire
        assert stale == 4
        await fsm.delete_object("fence", "db-1")
        next_holder = Lock(fsm, "db-1", "w2", machine="fence")
        token = await next_holder.acquire()  # creates the object again
        assert token > stale, f"token went back from {stale} to {token}"
        assert next_holder.token == token


@pytest.mark.parametrize("oid", [".", ".."])
def test_dot_ids_are_refused_in_paths_and_batches(cluster3: Cluster, oid: str) -> None:
    http = cluster3.http(0)
    assert http.put("/v1/machines/dots", body=lock_source(), content_type="application/yaml").status in (200, 201)
    r = http.post(f"/v1/machines/dots/objects/{oid}/transitions/create", json={})
    assert (r.status, r.error_code) == (400, "invalid_id"), r
    batch = http.post("/v1/batch", json={"operations": [
        {"machine": "dots", "id": oid, "transition": "create"}]})
    assert (batch.status, batch.error_code) == (400, "invalid_id"), batch
    assert http.get("/v1/machines/dots/objects").json["objects"] == []


async def test_the_client_refuses_a_dot_id_instead_of_sending_another_path(cluster3: Cluster) -> None:
    async with AsyncClient(cluster3.urls) as fsm:
        with pytest.raises(errors.InvalidRequest):
            await fsm.withdraw("lock", ".")
