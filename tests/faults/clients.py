"""Workload clients: one thread each, talking HTTP to one node and failing over to the next.

A client classifies every answer the way SPEC 1 and 4.9 define it, which is
what decides how the operation enters the history:

| answer | meaning | history |
|---|---|---|
| 2xx, or a 4xx refusal | definite | `complete` with the output |
| 503 `unavailable`, connection refused | nothing was applied | `discard` |
| 504 `timeout`, connection lost or timed out after sending | may or may not apply | `timeout` |
| any other 5xx | a bug | `timeout`, and counted in `unexpected` (the test fails) |
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.cluster.harness import Http, Response

DEFINITE, NOT_APPLIED, UNKNOWN = "definite", "not_applied", "unknown"
CLIENT_TIMEOUT = 8.0  # socket timeout; requests ask the cluster for `timeout=3s`
WRITE_TIMEOUT = "3s"


@dataclass
class Figures:
    """What a run did; `anomalies` must stay 0."""

    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, what: str) -> None:
        with self.lock:
            self.outcomes[what] += 1

    def note_unexpected(self, text: str) -> None:
        with self.lock:
            self.unexpected.append(text)

    @property
    def ops(self) -> int:
        return sum(self.outcomes.values())

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        return f"ops {self.ops} ({parts}); unexpected {len(self.unexpected)}; anomalies {len(self.anomalies)}"


class Client:
    """One logical client (a thread). After an indeterminate answer it takes a new
    process name, as Jepsen does: the old operation may still be in flight. The
    workloads run every other client in the high lane (`high_lane`), whose writes take
    other paths through a follower (cluster/raft/log_gate.py, forward_answers.py)."""

    def __init__(self, name: str, urls: list[str], first: int, figures: Figures,
                 high: bool = False) -> None:
        self.name = name
        self.high = high  # writes in the high admission lane (X-Priority: high)
        self.urls = urls
        self.node = first % len(urls)
        self.figures = figures
        self.generation = 0
        self._http = Http(urls[self.node], timeout=CLIENT_TIMEOUT)

    @property
    def process(self) -> str:
        return f"{self.name}.{self.generation}"

    def fail_over(self) -> None:
        self._http.close()
        self.node = (self.node + 1) % len(self.urls)
        self._http = Http(self.urls[self.node], timeout=CLIENT_TIMEOUT)

    def close(self) -> None:
        self._http.close()

    def send(self, method: str, path: str, **kw: Any) -> tuple[str, Response | None]:
        """(DEFINITE | NOT_APPLIED | UNKNOWN, response or None)."""
        try:
            response = self._http.request(method, path, **kw)
        except ConnectionRefusedError:
            self.fail_over()
            return NOT_APPLIED, None
        except (OSError, http.client.HTTPException):
            self.fail_over()
            self.generation += 1
            return UNKNOWN, None
        if response.status == 503:
            self.fail_over()
            return NOT_APPLIED, response
        if response.status == 504:
            self.generation += 1
            return UNKNOWN, response
        if response.status >= 500:
            self.figures.note_unexpected(f"{method} {path} -> {response!r} on {self._http.url}")
            self.generation += 1
            return UNKNOWN, response
        return DEFINITE, response

    def write(self, path: str, body: dict[str, Any], idempotency_key: str | None = None,
              ) -> tuple[str, Response | None]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if self.high:
            headers["X-Priority"] = "high"
        sep = "&" if "?" in path else "?"
        return self.send("POST", f"{path}{sep}timeout={WRITE_TIMEOUT}", json=body, headers=headers)


def refusal(response: Response) -> Any:
    """A refusal as the models expect it: `(code, detail)` or `code`."""
    code = response.error_code or f"http_{response.status}"
    if code == "version_conflict":
        details = response.json["error"].get("details") or [{}]
        return ("version_conflict", details[0].get("actual"))
    return code


def high_lane(index: int) -> bool:
    """Whether workload client `index` writes in the high lane: every other one, so both
    lanes go through the leader and through followers (client i starts on node i mod 3)."""
    return index % 2 == 1
