"""Copies each snapshot pysyncobj writes into the configured store, off the Raft thread.

pysyncobj's serializer (`cluster.storage.snapshot_file.SnapshotHooks`) writes the dump
file on the Raft thread and then calls `notify(index)`, which only sets an
event. The publisher thread reads the dump file back (one open: an atomic
rename never gives it half a file), describes it (index and term come from the
file itself), saves it to the store and prunes to the newest `keep`.

A failed save (Redis down or slow) is retried with exponential backoff, always
with the newest dump, so the store catches up as soon as it answers again.
Writes never wait for any of this; the log just is not compacted *in the store*
until it succeeds. `status` says how the last attempt went.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cluster.errors import SnapshotError

from .base import SnapshotMeta, SnapshotStore
from .snapshot_file import split_snapshot

log = logging.getLogger("fsmcluster.storage")

DEFAULT_KEEP = 3
RENAME_WAIT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class PublishStatus:
    store: str
    last_index: int | None = None  # Raft index of the newest snapshot in the store
    last_at_ms: int | None = None
    size: int | None = None
    ok: bool = True
    error: str | None = None
    failures: int = 0  # consecutive failed attempts
    seconds: float | None = None  # how long the last save took
    attempts: int = 0  # saves tried since start


def read_dump(path: Path) -> tuple[bytes, int, int]:
    """The dump file's bytes with the Raft index and term of its last entry."""
    payload = path.read_bytes()
    try:
        # our own file, just written by this process; raft_data is pysyncobj's bookkeeping
        _state, raft_data = split_snapshot(payload)
        _command, index, term = raft_data[0]
        return payload, int(index), int(term)
    except (SnapshotError, ValueError, TypeError, IndexError) as exc:
        raise SnapshotError(f"the dump file {path} cannot be read: {exc}") from exc


class SnapshotPublisher:
    def __init__(
        self,
        store: SnapshotStore,
        dump_file: Path,
        *,
        node: str,
        keep: int = DEFAULT_KEEP,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
    ) -> None:
        self.store = store
        self.dump_file = Path(dump_file)
        self.node = node
        self.keep = keep
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.status = PublishStatus(store=store.kind)
        self._wanted = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._wake.set()  # publish a dump left from before a restart, if the store lacks it
        self._thread = threading.Thread(target=self._run, name="fsm-snapshot-publisher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.store.close()

    def notify(self, index: int | None) -> None:
        """A new dump file is (about to be) in place; called on the Raft thread."""
        self._wanted = max(self._wanted, index or 0)
        self._wake.set()

    def _run(self) -> None:
        delay = self.base_delay
        while not self._stop.is_set():
            failing = not self.status.ok
            woke = self._wake.wait(delay if failing else 1.0)
            if self._stop.is_set():
                return
            self._wake.clear()
            if not woke and not failing:
                continue
            delay = self.base_delay if self._publish_newest() else min(delay * 2, self.max_delay)

    def _publish_newest(self) -> bool:
        try:
            payload, index, term = self._read_wanted()
        except FileNotFoundError:
            return True  # nothing written yet
        except SnapshotError as exc:
            log.error("%s", exc)
            return self._failed(str(exc))
        if self.status.ok and self.status.last_index is not None and index <= self.status.last_index:
            return True
        meta = SnapshotMeta.describe(payload, cluster_id=self.store.cluster_id, index=index,
                                     term=term, node=self.node)
        started = time.monotonic()
        try:
            stored = next((m for m in self.store.list_snapshots() if m.index == index), None)
            if stored is not None:  # same index = same state: another node (or a restore) put it there
                self.status = PublishStatus(self.store.kind, index, stored.created_at_ms, stored.size,
                                            True, None, 0, 0.0, self.status.attempts + 1)
                return True
            self.store.save(meta, payload)
            self.store.prune(self.keep)
        except SnapshotError as exc:
            return self._failed(str(exc))
        seconds = time.monotonic() - started
        if not self.status.ok:
            log.info("%s store answers again", self.store.kind)
        log.info("snapshot at index %d (%d bytes) saved to the %s store in %.2fs", index, len(payload),
                 self.store.kind, seconds)
        self.status = PublishStatus(self.store.kind, index, meta.created_at_ms, len(payload), True,
                                    None, 0, seconds, self.status.attempts + 1)
        return True

    def _read_wanted(self) -> tuple[bytes, int, int]:
        """Read the dump; if it is older than notified, pysyncobj has not renamed it yet: wait."""
        deadline = time.monotonic() + RENAME_WAIT_SECONDS
        while True:
            payload, index, term = read_dump(self.dump_file)
            if index >= self._wanted or time.monotonic() > deadline or self._stop.is_set():
                return payload, index, term
            time.sleep(0.02)

    def _failed(self, error: str) -> bool:
        s = self.status
        if s.ok:
            log.warning("snapshot not saved to the %s store (%s); retrying with backoff", s.store, error)
        self.status = PublishStatus(s.store, s.last_index, s.last_at_ms, s.size, False, error,
                                    s.failures + 1, s.seconds, s.attempts + 1)
        return False

    def wait_for(self, index: int, timeout: float) -> PublishStatus:
        """Block (a worker thread, not the event loop) until `index` is stored or a new attempt
        fails. Cuts a backoff wait short: an operator asking for a snapshot gets a fresh try."""
        deadline = time.monotonic() + timeout
        attempts = self.status.attempts
        self._wanted = max(self._wanted, index)
        self._wake.set()
        while time.monotonic() < deadline:
            s = self.status
            if (s.last_index or 0) >= index and s.ok:
                return s
            if not s.ok and s.attempts > attempts:
                return s
            time.sleep(0.05)
        return self.status
