"""A forked child process that writes one dump while the node goes on: Redis's BGSAVE.

`fork()` gives the child the node's memory as it is at that instant, copy on
write: a consistent picture of the state without copying it, taken while the
forking thread holds the GIL (so no Python object is half-changed). The child
encodes and writes on its own interpreter, so the node's Raft and HTTP threads
keep the whole GIL; a dump written by a thread of the node took the GIL from
them for as long as it encoded. pysyncobj's own file serializer forks for the
same reason.

The child touches nothing of the node: it closes every inherited descriptor
but its error pipe (so a socket the node closes is closed for its peer at
once, not when the child exits), leaves the GC off (it exits after one write),
runs no `atexit` hooks (`os._exit`), and is killed by the kernel if the thread
that forked it dies (`PR_SET_PDEATHSIG`), so a killed node leaves no writer
behind to race its restarted self for the same file. An error is written to the
pipe and read by `poll()`.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import resource
import signal
import warnings
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
# resolved before any fork (a lookup in the child could wait on a lock another thread held);
# Linux only: elsewhere the child does not die with its node
_PRCTL = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)
_ERROR_BYTES = 4096


class DumpChild:
    """One running child; `poll()` until it answers."""

    def __init__(self, pid: int, errors: int) -> None:
        self.pid = pid
        self._errors = errors  # read end of the child's error pipe
        self.outcome: str | None = None  # "" once it succeeded, else what went wrong

    @classmethod
    def start(cls, write: Callable[[], None]) -> DumpChild:
        """Fork a child that runs `write()` and exits; raises OSError if the fork fails."""
        read_end, write_end = os.pipe()
        parent = os.getpid()
        try:
            with warnings.catch_warnings():  # Python 3.12+ warns on fork in a threaded process
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            raise
        if pid == 0:  # the child; the tests check what it leaves behind
            _run(write, write_end, parent)
        os.close(write_end)
        return cls(pid, read_end)

    def poll(self) -> str | None:
        """None while the child runs; then "" if it wrote the dump, else its error (once reaped)."""
        if self.outcome is not None:
            return self.outcome
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return None
        self.outcome = self._read_error(status)
        return self.outcome

    def stop(self) -> None:
        """Kill the child if it still runs, and reap it."""
        if self.outcome is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.outcome = "stopped"
            self._close()

    def _read_error(self, status: int) -> str:
        try:
            message = os.read(self._errors, _ERROR_BYTES).decode(errors="replace")
        finally:
            self._close()
        if os.waitstatus_to_exitcode(status) == 0:
            return ""
        if os.WIFSIGNALED(status):
            return f"the dump process was killed by signal {os.WTERMSIG(status)}"
        return message or f"the dump process exited with status {os.waitstatus_to_exitcode(status)}"

    def _close(self) -> None:
        if self._errors >= 0:
            os.close(self._errors)
            self._errors = -1


def _run(write: Callable[[], None], errors: int, parent: int) -> None:
    code = 1
    try:
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the node died before the line above
            os._exit(1)
        os.closerange(3, errors)
        os.closerange(errors + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        gc.disable()
        write()
        code = 0
    except BaseException as exc:  # noqa: BLE001 - everything goes to the pipe
        with contextlib.suppress(OSError):
            os.write(errors, (str(exc) or type(exc).__name__).encode(errors="replace")[:_ERROR_BYTES])
    finally:
        os._exit(code)
