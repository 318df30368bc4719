"""The embedded snapshot store: one envelope file per snapshot in a directory.

    <dir>/snap-<index, 20 digits>.fsnap     magic | header length | meta JSON | payload

A save writes `<name>.tmp`, fsyncs it, renames it over the final name and fsyncs
the directory, so a crash leaves either the old set of snapshots or the new one,
never a half-written file under a final name. The cluster id lives in each
file's metadata; a file from another cluster is refused on load.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

from .base import (
    ENVELOPE_MAGIC,
    MAX_HEADER_BYTES,
    SnapshotMeta,
    SnapshotNotFound,
    SnapshotRejected,
    decode_envelope,
    encode_envelope,
    verify,
)

log = logging.getLogger("fsmcluster.storage")
_NAME = re.compile(r"^snap-(\d{20})\.fsnap$")


def node_store_dir(data_dir: str | Path) -> Path:
    """Where a node keeps its file-store snapshots: `<data-dir>/snapshots`."""
    return Path(data_dir) / "snapshots"


class FileStore:
    kind = "file"

    def __init__(self, directory: str | Path, cluster_id: str) -> None:
        self.directory = Path(directory)
        self.cluster_id = cluster_id

    def path_of(self, index: int) -> Path:
        return self.directory / f"snap-{index:020d}.fsnap"

    def save(self, meta: SnapshotMeta, payload: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.path_of(meta.index)
        tmp = final.with_name(final.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(encode_envelope(meta, payload))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        fsync_dir(self.directory)

    def list_snapshots(self) -> list[SnapshotMeta]:
        metas: list[SnapshotMeta] = []
        for index in self._indexes():
            try:
                metas.append(self._read_header(self.path_of(index)))
            except (OSError, SnapshotRejected) as exc:
                log.error("ignoring unreadable snapshot file %s: %s", self.path_of(index), exc)
        return metas

    def load(self, index: int) -> tuple[SnapshotMeta, bytes]:
        path = self.path_of(index)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise SnapshotNotFound(f"no snapshot at index {index} in {self.directory}") from None
        meta, payload = decode_envelope(blob)
        if meta.index != index:
            raise SnapshotRejected(f"{path} claims index {meta.index}; its name says {index}")
        verify(meta, payload, self.cluster_id)
        return meta, payload

    def prune(self, keep: int) -> list[int]:
        removed = self._indexes()[max(keep, 0) :]
        for index in removed:
            with contextlib.suppress(FileNotFoundError):
                self.path_of(index).unlink()
        if removed:
            fsync_dir(self.directory)
        return removed

    def close(self) -> None:
        pass

    def _indexes(self) -> list[int]:
        """Indexes of the snapshot files present, newest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        found = (_NAME.match(name) for name in names)
        return sorted((int(m.group(1)) for m in found if m), reverse=True)

    @staticmethod
    def _read_header(path: Path) -> SnapshotMeta:
        with open(path, "rb") as f:
            head = f.read(len(ENVELOPE_MAGIC) + 4 + MAX_HEADER_BYTES)
        # decode_envelope only needs the header; the payload part is ignored here
        meta, _ = decode_envelope(head)
        return meta


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
