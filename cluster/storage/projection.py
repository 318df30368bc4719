"""The Redis read model (`--redis-projection`): objects, state sets and an event stream.

Written by the leader only, for other services to read and subscribe to without
touching the cluster. It is **eventually consistent**: it lags the cluster by
the projection queue, and is rebuilt from the replicated state after a leader
change or a Redis outage.

    {ns}:obj:{machine}:{id}          string: the object's JSON (as GET /v1/.../objects/{id})
    {ns}:state:{machine}:{state}     set of object ids in that state
    {ns}:events                      stream; entry id `{raft index}-{n}` (n-th event of the entry),
                                     field `event` = the event JSON (SPEC 4.7)
    {ns}:projection                  hash: index (last projected Raft index), leader, rebuilt_at

`ns` is `{prefix}:{cluster_id}`. An event's stream id comes from its Raft index,
so Redis itself refuses a second copy (XADD with an id not above the last one
fails): each event is in the stream once, in log order, whichever leader wrote it.
An object write goes through a small Lua script that ignores a write older than
what is stored, so a deposed leader cannot roll the read model back.

Threads: `on_applied` runs on the Raft thread and only looks up the touched
records (immutable) and puts them on a bounded queue; a background thread
drains it into Redis pipelines. A full queue or a Redis error drops the queue
and marks the projection for a rebuild; writes to the cluster never wait.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import redis

from cluster.core.event import AnyEvent, json_default
from cluster.core.history import events
from cluster.core.state import ClusterState

from .redis import DEFAULT_PREFIX, namespace

log = logging.getLogger("fsmcluster.projection")

QUEUE_LIMIT = 50_000
BATCH_ITEMS = 200
PIPELINE_OPS = 1000
RETRY_MAX_SECONDS = 10.0

_SET_OBJECT = """
local old = redis.call('GET', KEYS[1])
if old then
  local o = cjson.decode(old)
  if tonumber(o['index']) > tonumber(ARGV[4]) then return 0 end
  redis.call('SREM', ARGV[1] .. ':state:' .. ARGV[2] .. ':' .. o['state'], ARGV[3])
end
if ARGV[5] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[5])
  redis.call('SADD', ARGV[1] .. ':state:' .. ARGV[2] .. ':' .. ARGV[6], ARGV[3])
end
return 1
"""


class ProjectionSource(Protocol):
    """What the projection reads from a node (a `RaftMember`)."""

    state: ClusterState
    state_lock: threading.Lock
    applied_through: int


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    enabled: bool = False
    ok: bool = True
    last_index: int = 0  # last Raft index written to Redis
    queued: int = 0
    rebuilds: int = 0
    error: str | None = None


# one applied entry: (Raft index, number of its first event within that index, events,
# {(machine, id): record or None}); records are immutable
_Item = tuple[int, int, tuple[dict[str, Any], ...], dict[tuple[str, str], Any]]


class Projection:
    def __init__(
        self,
        client: redis.Redis,
        cluster_id: str,
        source: ProjectionSource,
        is_leader: Callable[[], bool],
        *,
        node: str = "",
        prefix: str = DEFAULT_PREFIX,
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        self.client: Any = client  # bytes replies (decode_responses off)
        self.source = source
        self.is_leader = is_leader
        self.node = node
        self.ns = namespace(cluster_id, prefix)
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=queue_limit)
        self._set_object = client.register_script(_SET_OBJECT)
        self._leading = False  # as the projector thread last saw it
        self._floor = 0  # items below this index are covered by the last rebuild
        self._numbering_index = 0  # Raft thread only: event numbering within one index
        self._numbered = 0
        self._need_rebuild = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.status = ProjectionStatus(enabled=True)

    # -- keys ----------------------------------------------------------------

    def object_key(self, machine: str, oid: str) -> str:
        return f"{self.ns}:obj:{machine}:{oid}"

    def state_key(self, machine: str, state: str) -> str:
        return f"{self.ns}:state:{machine}:{state}"

    @property
    def stream_key(self) -> str:
        return f"{self.ns}:events"

    # -- the Raft thread -----------------------------------------------------

    def on_applied(self, index: int, events: tuple[dict[str, Any], ...]) -> None:
        """Called on the Raft thread after every applied entry; cheap and never blocks.

        Entries of a group commit share one Raft index: their events are numbered on
        within that index (computed on every node, so every leader numbers alike).
        """
        if index != self._numbering_index:
            self._numbering_index, self._numbered = index, 0
        first = self._numbered
        self._numbered += len(events)
        if not events or not self.is_leader():
            return
        state = self.source.state  # only this thread changes it, so no lock is needed here
        touched = {(e["machine"], e["object"]): None for e in events if e.get("machine") and e.get("object")}
        records = {key: state.get_object(*key) for key in touched}
        try:
            self._queue.put_nowait((index, first, events, records))
        except queue.Full:
            self._need_rebuild.set()

    # -- the projector thread ------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fsm-projection", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                leading = self.is_leader()
                if leading and not self._leading:
                    self._need_rebuild.set()  # a new leader: the read model may be behind or ahead
                self._leading = leading
                if not leading:
                    self._drain()
                    self._stop.wait(0.2)
                    continue
                if self._need_rebuild.is_set():
                    self._need_rebuild.clear()
                    self.rebuild()
                else:
                    self._write_batch()
                delay = 0.2
            except redis.RedisError as exc:
                self._failed(exc)
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
            except Exception as exc:  # a bug must not kill the thread silently
                log.exception("projection failed")
                self._failed(exc)
                self._stop.wait(delay)

    def _failed(self, exc: Exception) -> None:
        if self.status.ok:
            log.warning("Redis projection is behind (%s); it will be rebuilt when Redis answers", exc)
        self._need_rebuild.set()
        self._drain()
        self._publish(ok=False, error=str(exc))

    def _drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()

    def _write_batch(self) -> None:
        try:
            head = self._queue.get(timeout=0.5)
        except queue.Empty:
            return
        items = [head]
        with contextlib.suppress(queue.Empty):
            while len(items) < BATCH_ITEMS:
                items.append(self._queue.get_nowait())
        # an item at the rebuild's own index may be written twice: harmless, the stream
        # refuses a known id and the object ends as the last item left it
        fresh = [item for item in items if item is not None and item[0] >= self._floor]
        if not fresh:
            return
        last = max(self.status.last_index, *(item[0] for item in fresh))
        with self.client.pipeline(transaction=False) as pipe:
            for index, first, events, records in fresh:
                for n, event in enumerate(events, first):
                    blob = orjson.dumps(event, default=json_default)
                    pipe.xadd(self.stream_key, {"event": blob}, id=f"{index}-{n}")
                for (machine, oid), record in records.items():
                    self._queue_object(pipe, machine, oid, index, record)
            pipe.hset(f"{self.ns}:projection", mapping={"index": last, "leader": self.node})
            results = pipe.execute(raise_on_error=False)
        for result in results:
            if isinstance(result, redis.ResponseError) and "equal or smaller" not in str(result):
                raise result  # a duplicate XADD is the expected no-op; anything else is not
            if isinstance(result, redis.ConnectionError | redis.TimeoutError):
                raise result
        self._publish(ok=True, last_index=last)

    def _queue_object(self, pipe: Any, machine: str, oid: str, index: int, record: Any) -> None:
        body = b"" if record is None else orjson.dumps(record.to_json())
        state = "" if record is None else record.state
        self._set_object(keys=[self.object_key(machine, oid)],
                         args=[self.ns, machine, oid, index, body, state], client=pipe)

    # -- rebuild -------------------------------------------------------------

    def rebuild(self) -> None:
        """Make the read model equal to the local state, then continue from the queue."""
        started = time.monotonic()
        with self.source.state_lock:
            index = self.source.applied_through
            state = self.source.state
            records = [r for table in state.objects.values() for r in table.values()]
            histories = [events(h) for h in state.histories.values()]
        stream_last = self._stream_last_index()
        sets: dict[str, list[str]] = {}
        wanted_objects = set()
        with self.client.pipeline(transaction=False) as pipe:
            for n, record in enumerate(records, 1):
                key = self.object_key(record.machine, record.id)
                wanted_objects.add(key.encode())
                pipe.set(key, orjson.dumps(record.to_json()))
                sets.setdefault(self.state_key(record.machine, record.state), []).append(record.id)
                if n % PIPELINE_OPS == 0:
                    pipe.execute()
            pipe.execute()
        self._delete_unwanted(f"{self.ns}:obj:*", wanted_objects)
        self._replace_sets(sets)
        missed = self._backfill(histories, stream_last, index)
        self.client.hset(f"{self.ns}:projection",
                         mapping={"index": index, "leader": self.node, "rebuilt_at": int(time.time() * 1000)})
        self._floor = index
        self._publish(ok=True, last_index=index, rebuilt=True)
        log.info("Redis projection rebuilt at index %d: %d objects, %d events backfilled (%.2fs)",
                 index, len(records), missed, time.monotonic() - started)

    def _stream_last_index(self) -> int:
        last = self.client.xrevrange(self.stream_key, count=1)
        return int(last[0][0].split(b"-")[0]) if last else 0

    def _delete_unwanted(self, pattern: str, wanted: set[bytes]) -> None:
        stale = [k for k in self.client.scan_iter(match=pattern, count=1000) if k not in wanted]
        for i in range(0, len(stale), PIPELINE_OPS):
            self.client.delete(*stale[i : i + PIPELINE_OPS])

    def _replace_sets(self, sets: dict[str, list[str]]) -> None:
        for key, ids in sets.items():
            tmp = f"{key}:rebuilding"
            with self.client.pipeline(transaction=False) as pipe:
                pipe.delete(tmp)
                for i in range(0, len(ids), PIPELINE_OPS):
                    pipe.sadd(tmp, *ids[i : i + PIPELINE_OPS])
                pipe.rename(tmp, key)  # readers see the old set or the new one
                pipe.execute()
        self._delete_unwanted(f"{self.ns}:state:*", {k.encode() for k in sets})

    def _backfill(self, histories: list[tuple[AnyEvent, ...]], after: int, through: int) -> int:
        """Events the previous leader had not streamed, recovered from the objects' histories."""
        missed = sorted(
            (e for h in histories for e in h if after < int(e.get("index", 0)) <= through),
            key=lambda e: (int(e["index"]), str(e.get("machine")), str(e.get("object")), int(e.get("version", 0))),
        )
        seq: dict[int, int] = {}
        with self.client.pipeline(transaction=False) as pipe:
            for event in missed:
                index = int(event["index"])
                n = seq[index] = seq.get(index, -1) + 1
                blob = orjson.dumps(event, default=json_default)
                pipe.xadd(self.stream_key, {"event": blob}, id=f"{index}-{n}")
            pipe.execute(raise_on_error=False)
        return len(missed)

    def _publish(self, *, ok: bool, last_index: int | None = None, error: str | None = None,
                 rebuilt: bool = False) -> None:
        s = self.status
        if ok and not s.ok:
            log.info("Redis projection is writing again")
        self.status = ProjectionStatus(
            enabled=True, ok=ok, last_index=s.last_index if last_index is None else last_index,
            queued=self._queue.qsize(), rebuilds=s.rebuilds + int(rebuilt), error=error,
        )
