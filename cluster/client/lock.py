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

    async def acquire(self, wait: float | None = None, *, poll: float = 0.05) -> int:
        """Take the lock, waiting up to `wait` seconds while another owner holds it
        (None or 0: try once). Returns the fencing token; raises `LockHeld`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (wait or 0.0)
        delay, creations = poll, 0
        while True:
            try:
                result = await self.client.transition(
                    self.machine, self.name, "acquire", {"owner": self.owner}
                )
            except ObjectNotFound:
                if creations >= 3:
                    raise
                creations += 1
                await self._create()
                continue
            except (TransitionNotAllowed, PendingChange) as exc:
                if loop.time() + delay > deadline:
                    raise LockHeld("lock_held", await self._held_message(), exc.details, exc.status) from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            self.token = self.version = int(result["object"]["version"])
            return self.token

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

    def acquire(self, wait: float | None = None, *, poll: float = 0.05) -> int:
        return self._client.run(self._lock.acquire(wait, poll=poll))

    def renew(self) -> int:
        return self._client.run(self._lock.renew())

    def release(self) -> None:
        self._client.run(self._lock.release())

    def __enter__(self) -> SyncLock:
        self._client.run(self._lock.__aenter__())  # the renewer runs on the client's loop thread
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._client.run(self._lock.__aexit__(exc_type))


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
