"""Snapshots in Redis, namespaced by cluster id so several clusters can share one Redis.

    {prefix}:{cluster}:snapshots          sorted set: member and score = Raft index
    {prefix}:{cluster}:snap:{index}       hash: meta (JSON), chunks (count)
    {prefix}:{cluster}:snap:{index}:{n}   string: n-th chunk of the payload (<= 4 MiB)

A save writes the chunks first, then the hash and the sorted-set member in one
MULTI: a snapshot is listed only once all of it is there. Large payloads are
chunked so no single command holds Redis (or our socket timeout) for long.

The client is redis-py's synchronous one with short socket timeouts and no
automatic retries, so a dead or stalled Redis fails fast with `StoreUnavailable`;
the caller (a background uploader) owns the retry policy.
"""

from __future__ import annotations

import contextlib
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .base import SnapshotMeta, SnapshotNotFound, SnapshotRejected, StoreUnavailable, verify

CHUNK_BYTES = 4 * 1024 * 1024
DEFAULT_PREFIX = "fsm"


def connect(url: str, *, timeout: float = 5.0, connect_timeout: float = 2.0) -> redis.Redis:
    """A client that fails fast: bounded connect and socket waits, no hidden retries."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )


def namespace(cluster_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:{cluster_id}"


class RedisStore:
    kind = "redis"

    def __init__(
        self,
        client: redis.Redis,
        cluster_id: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.client: Any = client  # redis-py's return types depend on decode_responses
        self.cluster_id = cluster_id
        self.ns = namespace(cluster_id, prefix)
        self.chunk_bytes = chunk_bytes

    @classmethod
    def from_url(cls, url: str, cluster_id: str, **kw: Any) -> RedisStore:
        return cls(connect(url), cluster_id, **kw)

    @property
    def index_key(self) -> str:
        return f"{self.ns}:snapshots"

    def meta_key(self, index: int) -> str:
        return f"{self.ns}:snap:{index}"

    def chunk_key(self, index: int, n: int) -> str:
        return f"{self.ns}:snap:{index}:{n}"

    def save(self, meta: SnapshotMeta, payload: bytes) -> None:
        chunks = [payload[i : i + self.chunk_bytes] for i in range(0, len(payload), self.chunk_bytes)]
        try:
            self.client.zrem(self.index_key, str(meta.index))  # a retry of the same index
            self._delete(meta.index)
            for n, chunk in enumerate(chunks):
                self.client.set(self.chunk_key(meta.index, n), chunk)
            with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(self.meta_key(meta.index), mapping={"meta": meta.to_bytes(), "chunks": len(chunks)})
                pipe.zadd(self.index_key, {str(meta.index): meta.index})
                pipe.execute()
        except redis.RedisError as exc:
            with contextlib.suppress(redis.RedisError):
                self.client.delete(*[self.chunk_key(meta.index, n) for n in range(len(chunks))])
            raise StoreUnavailable(f"cannot save snapshot {meta.index} to Redis: {exc}") from exc

    def list_snapshots(self) -> list[SnapshotMeta]:
        try:
            indexes = [int(m) for m in self.client.zrevrange(self.index_key, 0, -1)]
            if not indexes:
                return []
            with self.client.pipeline(transaction=False) as pipe:
                for index in indexes:
                    pipe.hget(self.meta_key(index), "meta")
                raws = pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable(f"cannot list snapshots in Redis: {exc}") from exc
        metas = []
        for index, raw in zip(indexes, raws, strict=True):
            if raw is None:
                continue  # pruned meanwhile
            try:
                metas.append(SnapshotMeta.from_bytes(raw))
            except SnapshotRejected:
                # listed with what we know, so `load` refuses it with a clear reason
                metas.append(SnapshotMeta(self.cluster_id, index, 0, "?", 0, -1, "", -1))
        return metas

    def load(self, index: int) -> tuple[SnapshotMeta, bytes]:
        try:
            fields = self.client.hgetall(self.meta_key(index))
            if not fields:
                raise SnapshotNotFound(f"no snapshot at index {index} under {self.ns}")
            meta = SnapshotMeta.from_bytes(fields[b"meta"])
            count = int(fields.get(b"chunks", b"-1"))
            parts = []
            for n in range(count):
                part = self.client.get(self.chunk_key(index, n))
                if part is None:
                    raise SnapshotRejected(f"snapshot {index} is missing chunk {n} of {count}")
                parts.append(part)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"cannot read snapshot {index} from Redis: {exc}") from exc
        except (KeyError, ValueError) as exc:
            raise SnapshotRejected(f"snapshot {index} has a damaged header: {exc!r}") from None
        if meta.index != index:
            raise SnapshotRejected(f"snapshot stored under index {index} claims index {meta.index}")
        payload = b"".join(parts)
        verify(meta, payload, self.cluster_id)
        return meta, payload

    def prune(self, keep: int) -> list[int]:
        try:
            indexes = [int(m) for m in self.client.zrevrange(self.index_key, 0, -1)]
            removed = indexes[max(keep, 0) :]
            for index in removed:
                self.client.zrem(self.index_key, str(index))  # unlisted first, then deleted
                self._delete(index)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"cannot prune snapshots in Redis: {exc}") from exc
        return removed

    def close(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self.client.close()

    def _delete(self, index: int) -> None:
        raw = self.client.hget(self.meta_key(index), "chunks")
        count = int(raw) if raw is not None and raw.isdigit() else 0
        keys = [self.meta_key(index)] + [self.chunk_key(index, n) for n in range(count)]
        self.client.delete(*keys)
