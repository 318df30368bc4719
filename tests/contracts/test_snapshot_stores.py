"""The snapshot store contract (STYLE rule 5): one abstract test class, one subclass per store.

Every store must save and list snapshots newest first, load exactly what was
saved, replace a snapshot saved again under the same index, prune to the newest
K, and refuse corrupt, truncated or foreign snapshots (`latest_valid` then falls
back to the newest one that verifies).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.storage.base import (
    SnapshotMeta,
    SnapshotNotFound,
    SnapshotRejected,
    SnapshotStore,
    StoreUnavailable,
    latest_valid,
)
from cluster.storage.file import FileStore
from cluster.storage.redis import RedisStore, connect
from tests.redis_server import RedisServer

CLUSTER = "c1"


def payload_for(index: int, size: int = 1000) -> bytes:
    return (f"snapshot-{index}:".encode() * (size // 10 + 1))[:size]


def meta_for(payload: bytes, index: int, cluster_id: str = CLUSTER) -> SnapshotMeta:
    return SnapshotMeta.describe(payload, cluster_id=cluster_id, index=index, term=3, node="127.0.0.1:7001")


class SnapshotStoreContract:
    """Subclasses provide `store` (a fixture) and know how to damage what they stored."""

    def make_store(self, cluster_id: str) -> SnapshotStore:
        raise NotImplementedError

    def corrupt(self, store: SnapshotStore, index: int) -> None:
        """Flip bytes inside the stored payload of snapshot `index`."""
        raise NotImplementedError

    def truncate(self, store: SnapshotStore, index: int) -> None:
        raise NotImplementedError

    @pytest.fixture
    def store(self) -> Iterator[SnapshotStore]:
        store = self.make_store(CLUSTER)
        yield store
        store.close()

    def save(self, store: SnapshotStore, index: int, size: int = 1000) -> SnapshotMeta:
        payload = payload_for(index, size)
        meta = meta_for(payload, index)
        store.save(meta, payload)
        return meta

    def test_empty_store_has_no_snapshot(self, store: SnapshotStore) -> None:
        assert store.list_snapshots() == []
        assert latest_valid(store) is None
        with pytest.raises(SnapshotNotFound):
            store.load(1)

    def test_save_then_load_returns_the_same_bytes_and_meta(self, store: SnapshotStore) -> None:
        meta = self.save(store, 42)
        loaded_meta, payload = store.load(42)
        assert loaded_meta == meta
        assert payload == payload_for(42)
        assert store.kind in ("file", "redis")

    def test_list_is_newest_first(self, store: SnapshotStore) -> None:
        for index in (5, 100, 20):
            self.save(store, index)
        assert [m.index for m in store.list_snapshots()] == [100, 20, 5]

    def test_latest_is_the_highest_index(self, store: SnapshotStore) -> None:
        for index in (7, 9, 8):
            self.save(store, index)
        found = latest_valid(store)
        assert found is not None and found[0].index == 9 and found[1] == payload_for(9)

    def test_saving_an_index_again_replaces_it(self, store: SnapshotStore) -> None:
        self.save(store, 3, size=50)
        meta = self.save(store, 3, size=2000)
        assert [m.index for m in store.list_snapshots()] == [3]
        assert store.load(3) == (meta, payload_for(3, 2000))

    def test_large_payload_round_trips(self, store: SnapshotStore) -> None:
        payload = os.urandom(3 * 1024 * 1024 + 17)
        meta = meta_for(payload, 11)
        store.save(meta, payload)
        assert store.load(11)[1] == payload

    def test_prune_keeps_the_newest(self, store: SnapshotStore) -> None:
        for index in range(1, 6):
            self.save(store, index)
        assert sorted(store.prune(2)) == [1, 2, 3]
        assert [m.index for m in store.list_snapshots()] == [5, 4]
        with pytest.raises(SnapshotNotFound):
            store.load(1)
        assert store.prune(2) == []

    def test_corrupt_snapshot_is_refused_and_latest_falls_back(self, store: SnapshotStore) -> None:
        self.save(store, 1)
        self.save(store, 2)
        self.corrupt(store, 2)
        with pytest.raises(SnapshotRejected, match="checksum"):
            store.load(2)
        found = latest_valid(store)
        assert found is not None and found[0].index == 1

    def test_truncated_snapshot_is_refused(self, store: SnapshotStore) -> None:
        self.save(store, 4, size=5000)
        self.truncate(store, 4)
        with pytest.raises(SnapshotRejected):
            store.load(4)
        assert latest_valid(store) is None

    def test_foreign_cluster_snapshot_is_refused(self, store: SnapshotStore) -> None:
        payload = payload_for(6)
        store.save(meta_for(payload, 6, cluster_id="someone-else"), payload)
        with pytest.raises(SnapshotRejected, match="foreign"):
            store.load(6)
        assert latest_valid(store) is None

    def test_newer_format_version_is_refused(self, store: SnapshotStore) -> None:
        payload = payload_for(8)
        meta = meta_for(payload, 8)
        store.save(SnapshotMeta(**{**meta.to_json(), "format_version": 99}), payload)
        with pytest.raises(SnapshotRejected, match="format version 99"):
            store.load(8)

    def test_clusters_sharing_a_backend_do_not_see_each_other(self, store: SnapshotStore) -> None:
        other = self.make_store("c2")
        try:
            self.save(store, 10)
            payload = payload_for(20)
            other.save(meta_for(payload, 20, cluster_id="c2"), payload)
            assert [m.index for m in store.list_snapshots()] == [10]
            assert [m.index for m in other.list_snapshots()] == [20]
        finally:
            other.close()


class TestFileStore(SnapshotStoreContract):
    @pytest.fixture(autouse=True)
    def _root(self, tmp_path: Path) -> None:
        self.root = tmp_path

    def make_store(self, cluster_id: str) -> SnapshotStore:
        return FileStore(self.root / cluster_id / "snapshots", cluster_id)

    def corrupt(self, store: SnapshotStore, index: int) -> None:
        path = store.path_of(index)  # type: ignore[attr-defined]
        blob = bytearray(path.read_bytes())
        blob[-10] ^= 0xFF
        path.write_bytes(bytes(blob))

    def truncate(self, store: SnapshotStore, index: int) -> None:
        path = store.path_of(index)  # type: ignore[attr-defined]
        path.write_bytes(path.read_bytes()[:-100])

    def test_no_temp_file_is_left_behind(self, store: SnapshotStore) -> None:
        self.save(store, 1)
        assert [p.name for p in store.directory.iterdir()] == ["snap-00000000000000000001.fsnap"]  # type: ignore[attr-defined]


class TestRedisStore(SnapshotStoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, redis_server: RedisServer) -> None:
        self.server = redis_server

    def make_store(self, cluster_id: str) -> SnapshotStore:
        # small chunks so the contract exercises multi-chunk snapshots
        return RedisStore(connect(self.server.url), cluster_id, chunk_bytes=1024 * 1024)

    def corrupt(self, store: SnapshotStore, index: int) -> None:
        assert isinstance(store, RedisStore)
        key = store.chunk_key(index, 0)
        blob = bytearray(store.client.get(key))
        blob[5] ^= 0xFF
        store.client.set(key, bytes(blob))

    def truncate(self, store: SnapshotStore, index: int) -> None:
        assert isinstance(store, RedisStore)
        key = store.chunk_key(index, 0)
        store.client.set(key, store.client.get(key)[:-100])

    def test_keys_are_namespaced_by_cluster_id(self, store: SnapshotStore) -> None:
        assert isinstance(store, RedisStore)
        self.save(store, 1)
        assert all(k.startswith(b"fsm:c1:") for k in store.client.keys("*"))

    def test_missing_chunk_is_refused(self, store: SnapshotStore) -> None:
        assert isinstance(store, RedisStore)
        payload = os.urandom(2 * 1024 * 1024 + 1)
        store.save(meta_for(payload, 12), payload)
        store.client.delete(store.chunk_key(12, 1))
        with pytest.raises(SnapshotRejected, match="missing chunk"):
            store.load(12)

    def test_dead_redis_fails_fast_with_store_unavailable(self, store: SnapshotStore) -> None:
        self.server.stop()
        with pytest.raises(StoreUnavailable):
            self.save(store, 1)
        with pytest.raises(StoreUnavailable):
            store.list_snapshots()
