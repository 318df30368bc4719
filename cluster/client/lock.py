"""A distributed lock with a lease and fencing tokens, on the `lock` example machine.

    async with Lock(async_client, "db-1", "worker-1") as lock:
        write_to_storage(fencing_token=lock.token)

    with Lock(sync_client, "db-1", "worker-1", wait=10, renew_every=10) as lock:
        ...   # the lease is renewed in the background every 10 s while inside the block

The machine (SPEC section 3): `free --acquire--> held --release--> free`; `renew`
keeps it held; a lock held for 30 s without a renew expires back to `free`. The
fencing token is the object's version right after `acquire`: versions only grow for
a name, even across leader changes and when the lock object is removed and created
again (it continues above its last version), so storage that remembers the largest
token it saw can refuse a writer whose lease expired while it was paused. The lock
object is created on first use. An owner is 1-64 characters of `a-z 0-9 -`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, overload

from .clients import AsyncClient, Client
from .errors import (
    FsmError,
    GuardFailed,
    LockHeld,
    LockLost,
    ObjectExists,
    ObjectNotFound,
    PendingChange,
    TransitionNotAllowed,
)
from .watch import Watch

LOCK_MACHINE = "lock"


class AsyncLock:
    """The lock for an `AsyncClient`; `async with` acquires (waiting up to `wait` s) and releases."""

    def __init__(
        self,
        client: AsyncClient,
        name: str,
        owner: str,
        *,
        wait: float = 30.0,
        renew_every: float | None = None,
        machine: str = LOCK_MACHINE,
    ) -> None:
        self.client = client
        self.name = name
        self.owner = owner
        self.wait = wait
        self.renew_every = renew_every  # inside `with`: renew in the background this often
        self.machine = machine
        self.token: int | None = None  # fencing token of the current hold
        self.version: int | None = None  # object version after the last acquire or renew
        self._renewer: asyncio.Task[None] | None = None
        self._renew_error: LockLost | None = None

    async def acquire(self, wait: bool | float | None = None, *, timeout: float | None = None) -> int:
        """Take the lock. Returns the fencing token; raises `LockHeld`.

        `wait=False`/None/0: try once. `wait=True`: wait up to `timeout` seconds (default
        the lock's `wait`); a number: wait that many seconds. While another owner holds
        it, the helper follows the lock object on the event feed (no polling) and races
        for it again as soon as an event frees it (released, expired, removed).
        """
        seconds = _wait_seconds(wait, timeout, self.wait)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        watch: Watch | None = None
        try:
            while True:
                try:
                    return await self._try_acquire()
                except (TransitionNotAllowed, PendingChange) as exc:
                    if loop.time() >= deadline:
                        raise LockHeld("lock_held", await self._held_message(), exc.details,
                                       exc.status) from exc
                    if watch is None:
                        watch, free = await self._follow()
                        if watch is None or free:
                            continue
                    if not await self._until_freed(watch, deadline):
                        raise LockHeld("lock_held", await self._held_message(), exc.details,
                                       exc.status) from exc
        finally:
            if watch is not None:
                await watch.aclose()

    async def _try_acquire(self) -> int:
        for _ in range(3):
            try:
                result = await self.client.transition(
                    self.machine, self.name, "acquire", {"owner": self.owner}
                )
            except ObjectNotFound:
                await self._create()
                continue
            self.token = self.version = int(result["object"]["version"])
            return self.token
        raise ObjectNotFound("object_not_found", f"lock '{self.name}' keeps disappearing")

    async def _follow(self) -> tuple[Watch | None, bool]:
        """A feed watch on the lock from its current version on; True when it is free now."""
        try:
            obj = await self.client.get_object(self.machine, self.name)
        except ObjectNotFound:
            return None, True  # removed meanwhile: race again (acquiring creates it)
        watch = self.client.watch(machine=self.machine, object=self.name, since=int(obj["index"]))
        return watch, obj.get("state") == "free" and not obj.get("pending")

    async def _until_freed(self, watch: Watch, deadline: float) -> bool:
        """Wait for an event that frees the lock; False when the deadline passes first."""
        try:
            async with asyncio.timeout_at(deadline):
                async for event in watch:
                    if event.get("kind") == "removed" or (
                        event.get("kind") in ("transition", "created") and event.get("to") == "free"
                    ):
                        return True
        except TimeoutError:
            return False
        return False

    async def renew(self) -> int:
        """Extend the lease; returns the object's new version. Raises `LockLost`."""
        result = await self._owner_transition("renew")
        self.version = int(result["object"]["version"])
        return self.version

    async def release(self) -> None:
        """Free the lock. Raises `LockLost` when it was no longer ours (expired, taken)."""
        try:
            await self._owner_transition("release")
        finally:
            self.token = None

    async def __aenter__(self) -> AsyncLock:
        await self.acquire(self.wait)
        self.start_renewing()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        lost = await self.stop_renewing()
        try:
            await self.release()
        except LockLost as exc:
            lost = lost or exc
        if lost is not None and exc_type is None:
            raise lost

    def start_renewing(self) -> None:
        """With `renew_every` set, renew the lease in a background task until `stop_renewing`."""
        if self.renew_every and self._renewer is None:
            self._renew_error = None
            self._renewer = asyncio.get_running_loop().create_task(self._renew_loop(self.renew_every))

    async def stop_renewing(self) -> LockLost | None:
        """Stop the background renewal; returns the `LockLost` it met, if any."""
        task, self._renewer = self._renewer, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return self._renew_error

    async def _renew_loop(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.renew()
            except LockLost as exc:
                self._renew_error = exc
                return
            except FsmError:
                continue  # unavailable for now: the lease may still be ours; try again

    async def _create(self) -> None:
        with contextlib.suppress(ObjectExists):
            await self.client.transition(self.machine, self.name, "create")

    async def _owner_transition(self, transition: str) -> dict[str, Any]:
        try:
            return await self.client.transition(
                self.machine, self.name, transition, {"owner": self.owner}
            )
        except (GuardFailed, TransitionNotAllowed, ObjectNotFound) as exc:
            raise LockLost(
                "lock_lost",
                f"lock '{self.name}' is not held by '{self.owner}' ({exc.code}: {exc.message})",
                exc.details,
                exc.status,
            ) from exc

    async def _held_message(self) -> str:
        try:
            obj = await self.client.get_object(self.machine, self.name)
        except FsmError:
            return f"lock '{self.name}' is held by another owner"
        owner = (obj.get("data") or {}).get("owner")
        return (
            f"lock '{self.name}' is {obj.get('state')} (owner {owner!r}, version {obj.get('version')}); "
            f"'{self.owner}' could not acquire it"
        )


class SyncLock:
    """The same lock for a blocking `Client`; `with` acquires and releases."""

    def __init__(
        self,
        client: Client,
        name: str,
        owner: str,
        *,
        wait: float = 30.0,
        renew_every: float | None = None,
        machine: str = LOCK_MACHINE,
    ) -> None:
        self._client = client
        self._lock = AsyncLock(
            client.aio, name, owner, wait=wait, renew_every=renew_every, machine=machine
        )

    @property
    def token(self) -> int | None:
        return self._lock.token

    @property
    def version(self) -> int | None:
        return self._lock.version

    @property
    def name(self) -> str:
        return self._lock.name

    @property
    def owner(self) -> str:
        return self._lock.owner

    def acquire(self, wait: bool | float | None = None, *, timeout: float | None = None) -> int:
        return self._client.run(self._lock.acquire(wait, timeout=timeout))

    def renew(self) -> int:
        return self._client.run(self._lock.renew())

    def release(self) -> None:
        self._client.run(self._lock.release())

    def __enter__(self) -> SyncLock:
        self._client.run(self._lock.__aenter__())  # the renewer runs on the client's loop thread
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._client.run(self._lock.__aexit__(exc_type))


def _wait_seconds(wait: bool | float | None, timeout: float | None, default: float) -> float:
    if wait is True:
        return default if timeout is None else timeout
    return float(wait or 0.0)


@overload
def Lock(
    client: AsyncClient, name: str, owner: str, *, wait: float = ..., renew_every: float | None = ...,
    machine: str = ...,
) -> AsyncLock: ...
@overload
def Lock(
    client: Client, name: str, owner: str, *, wait: float = ..., renew_every: float | None = ...,
    machine: str = ...,
) -> SyncLock: ...
def Lock(  # noqa: N802 - reads as a class at the call site
    client: AsyncClient | Client,
    name: str,
    owner: str,
    *,
    wait: float = 30.0,
    renew_every: float | None = None,
    machine: str = LOCK_MACHINE,
) -> AsyncLock | SyncLock:
    """The lock for either client: an `AsyncLock` (awaitable methods, `async with`) for an
    `AsyncClient`, a `SyncLock` (blocking methods, `with`) for a `Client`."""
    if isinstance(client, Client):
        return SyncLock(client, name, owner, wait=wait, renew_every=renew_every, machine=machine)
    return AsyncLock(client, name, owner, wait=wait, renew_every=renew_every, machine=machine)
