"""Operations of a client history and the recorder that fault workloads use.

An operation is an interval: it was invoked at some time and either completed
with an output at a later time, or never completed (timed out, connection lost,
the client was killed). A never-completed operation is *indeterminate*: it may
or may not have taken effect, and if it did, at any moment after its invocation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Operation:
    """One client call. `complete is None` means indeterminate (output is then ignored)."""

    id: int
    process: Hashable
    key: Hashable
    kind: str
    input: Any
    invoke: float
    complete: float | None
    output: Any = None

    @property
    def indeterminate(self) -> bool:
        return self.complete is None

    def describe(self) -> str:
        end = "?" if self.complete is None else f"{self.complete:.6g}"
        result = "indeterminate" if self.complete is None else repr(self.output)
        return (
            f"#{self.id} {self.process}: {self.kind}({self.input!r}) -> {result}"
            f" [{self.invoke:.6g}, {end}]"
        )


class History:
    """Thread-safe recorder of operations, stamped with `time.monotonic()`.

    Every method is short and never blocks on I/O, so coroutines may call it
    directly. Record the invocation *before* the request leaves the client and
    the completion *after* the answer arrived: the interval must contain the
    moment the cluster applied the operation.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._next_id = 0
        self._open: dict[int, Operation] = {}
        self._done: dict[int, Operation] = {}

    def invoke(self, process: Hashable, key: Hashable, kind: str, input: Any = None) -> int:
        """Record that `process` sent an operation; returns its id."""
        with self._lock:
            op_id = self._next_id
            self._next_id += 1
            self._open[op_id] = Operation(op_id, process, key, kind, input, self._clock(), None)
            return op_id

    def complete(self, op_id: int, output: Any) -> None:
        """Record a definite answer: the operation took effect (or was refused) as `output` says."""
        with self._lock:
            op = self._take_open(op_id)
            self._done[op_id] = Operation(
                op.id, op.process, op.key, op.kind, op.input, op.invoke, self._clock(), output
            )

    def timeout(self, op_id: int) -> None:
        """Record that no definite answer came: the operation stays indeterminate."""
        with self._lock:
            self._done[op_id] = self._take_open(op_id)

    def discard(self, op_id: int) -> None:
        """Forget an operation known to have had no effect (e.g. refused before proposing).

        Only for answers that guarantee nothing was applied; when in doubt use `timeout`.
        """
        with self._lock:
            self._take_open(op_id)

    def operations(self) -> list[Operation]:
        """Every recorded operation in id order; operations still open count as indeterminate."""
        with self._lock:
            ops = list(self._done.values()) + list(self._open.values())
        return sorted(ops, key=lambda op: op.id)

    def _take_open(self, op_id: int) -> Operation:
        try:
            return self._open.pop(op_id)
        except KeyError:
            state = "already finished" if op_id in self._done else "unknown"
            raise ValueError(f"operation {op_id} is {state}; expected an open operation") from None
