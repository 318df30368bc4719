"""What a snapshot store is: the `SnapshotStore` protocol, snapshot metadata, and checks.

A snapshot's payload is the exact file pysyncobj's serializer wrote
(`cluster.storage.snapshot_file`: cluster state + Raft bookkeeping), so restoring one is
putting those bytes back where pysyncobj loads its full dump. Around the payload
every store keeps a `SnapshotMeta`: envelope format version, cluster id, Raft
index and term, the node that took it, when, size and SHA-256. `verify` refuses
a payload whose metadata does not match (corrupt, truncated, another cluster's,
a newer format): such a snapshot is never loaded.

Stores are synchronous: they run on background threads (uploads) or in the CLI,
never on the asyncio loop or the Raft thread.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import orjson

from cluster.errors import SnapshotError

log = logging.getLogger("fsmcluster.storage")

FORMAT_VERSION = 1
ENVELOPE_MAGIC = b"FSMSTORE1\n"
_HEADER_LEN = struct.Struct("<I")
MAX_HEADER_BYTES = 64 * 1024


class SnapshotRejected(SnapshotError):
    """A stored snapshot that must not be loaded: corrupt, truncated, foreign or too new."""


class SnapshotNotFound(SnapshotError):
    """No snapshot with that index (or none at all) in the store."""


class StoreUnavailable(SnapshotError):
    """The store cannot be reached or answered too slowly (e.g. Redis down); retry later."""


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    cluster_id: str
    index: int  # Raft index of the last entry the snapshot contains
    term: int  # term of that entry
    node: str  # Raft address of the node that took it
    created_at_ms: int
    size: int  # payload bytes
    sha256: str  # hex digest of the payload
    format_version: int = FORMAT_VERSION

    @staticmethod
    def describe(
        payload: bytes, *, cluster_id: str, index: int, term: int, node: str,
        created_at_ms: int | None = None,
    ) -> SnapshotMeta:
        return SnapshotMeta(
            cluster_id=cluster_id,
            index=index,
            term=term,
            node=node,
            created_at_ms=int(time.time() * 1000) if created_at_ms is None else created_at_ms,
            size=len(payload),
            sha256=hashlib.sha256(payload).hexdigest(),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_json())

    @staticmethod
    def from_json(raw: Any) -> SnapshotMeta:
        try:
            meta = SnapshotMeta(
                cluster_id=str(raw["cluster_id"]),
                index=int(raw["index"]),
                term=int(raw["term"]),
                node=str(raw["node"]),
                created_at_ms=int(raw["created_at_ms"]),
                size=int(raw["size"]),
                sha256=str(raw["sha256"]),
                format_version=int(raw["format_version"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotRejected(f"snapshot metadata is unreadable: {exc!r}") from None
        return meta

    @staticmethod
    def from_bytes(blob: bytes) -> SnapshotMeta:
        try:
            raw = orjson.loads(blob)
        except orjson.JSONDecodeError as exc:
            raise SnapshotRejected(f"snapshot metadata is not JSON: {exc}") from None
        return SnapshotMeta.from_json(raw)


def verify(meta: SnapshotMeta, payload: bytes, cluster_id: str) -> None:
    """Raise `SnapshotRejected` unless `payload` is exactly what `meta` describes."""
    where = f"snapshot at index {meta.index} (node {meta.node})"
    if meta.format_version != FORMAT_VERSION:
        raise SnapshotRejected(
            f"{where} has format version {meta.format_version}; this build reads {FORMAT_VERSION}"
        )
    if meta.cluster_id != cluster_id:
        raise SnapshotRejected(
            f"{where} belongs to cluster {meta.cluster_id!r}, not {cluster_id!r}: refusing a foreign snapshot"
        )
    if len(payload) != meta.size:
        raise SnapshotRejected(f"{where} is {len(payload)} bytes, expected {meta.size}: truncated or corrupt")
    digest = hashlib.sha256(payload).hexdigest()
    if digest != meta.sha256:
        raise SnapshotRejected(f"{where} fails its checksum (sha256 {digest[:12]}…, expected {meta.sha256[:12]}…)")


def encode_envelope(meta: SnapshotMeta, payload: bytes) -> bytes:
    """A self-describing blob: magic | u32 header length | header JSON | payload."""
    header = meta.to_bytes()
    return ENVELOPE_MAGIC + _HEADER_LEN.pack(len(header)) + header + payload


def decode_envelope(blob: bytes) -> tuple[SnapshotMeta, bytes]:
    """Split an envelope; the caller still has to `verify` the payload against the metadata."""
    if not blob.startswith(ENVELOPE_MAGIC):
        raise SnapshotRejected("not an fsmcluster snapshot (bad magic)")
    offset = len(ENVELOPE_MAGIC)
    try:
        (length,) = _HEADER_LEN.unpack_from(blob, offset)
    except struct.error:
        raise SnapshotRejected("snapshot header is truncated") from None
    if length > MAX_HEADER_BYTES or offset + _HEADER_LEN.size + length > len(blob):
        raise SnapshotRejected(f"snapshot header length {length} is impossible")
    start = offset + _HEADER_LEN.size
    meta = SnapshotMeta.from_bytes(blob[start : start + length])
    return meta, blob[start + length :]


class SnapshotStore(Protocol):
    """Where snapshots of one cluster are kept. Implementations: `file.FileStore`, `redis.RedisStore`."""

    kind: str  # "file" or "redis", as `/v1/cluster` reports it
    cluster_id: str

    def save(self, meta: SnapshotMeta, payload: bytes) -> None:
        """Store one snapshot; replaces one with the same index. Atomic: all of it or none."""
        ...

    def list_snapshots(self) -> list[SnapshotMeta]:
        """Metadata of every stored snapshot, newest (highest index) first; nothing verified."""
        ...

    def load(self, index: int) -> tuple[SnapshotMeta, bytes]:
        """The verified payload of one snapshot; `SnapshotNotFound` / `SnapshotRejected`."""
        ...

    def prune(self, keep: int) -> list[int]:
        """Delete all but the newest `keep` snapshots; returns the deleted indexes."""
        ...

    def close(self) -> None: ...


def latest_valid(store: SnapshotStore) -> tuple[SnapshotMeta, bytes] | None:
    """The newest snapshot that verifies; a refused one is logged and skipped, never loaded."""
    for meta in store.list_snapshots():
        try:
            return store.load(meta.index)
        except SnapshotRejected as exc:
            log.error("refusing %s snapshot at index %d from %s: %s", store.kind, meta.index,
                      meta.node, exc)
        except SnapshotNotFound:
            continue  # pruned between list() and load()
    return None
