"""The Python client of fsmcluster: `AsyncClient` and `Client` (blocking), typed errors,
failover between nodes, and the `Lock` helper.

    from cluster.client import Client, Lock

The pieces depend one way: `errors` <- `transport` <- `watch` <- `clients` <- `lock`.
"""

from . import errors
from .clients import DEFAULT_URL, AsyncClient, Client, RetryPolicy, normalize_urls
from .errors import *  # noqa: F403 - the errors are part of the client's API
from .lock import AsyncLock, Lock, SyncLock
from .watch import SyncWatch, Watch

__all__ = [
    "DEFAULT_URL",
    "AsyncClient",
    "AsyncLock",
    "Client",
    "Lock",
    "RetryPolicy",
    "SyncLock",
    "SyncWatch",
    "Watch",
    "normalize_urls",
    *errors.__all__,
]
