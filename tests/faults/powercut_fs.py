"""A FUSE file system that forgets, on a "power cut", everything that was not synced (like LazyFS).

    python -m tests.faults.powercut_fs MOUNTPOINT [SYNC_DELAY_SECONDS]   # serves until unmounted

Files and directories live in this process's memory, each in two versions:

- what programs see (every write, truncate, create, rename, unlink, at once), and
- what a disk would still hold after losing power: a file's bytes as of its
  last `fsync`/`fdatasync`; a directory's entries as of its last `fsync` of the
  directory (POSIX: a new name, a rename or an unlink is durable only once its
  directory is synced).

Writing `cut` to the control file `/.powercut` drops the first version for the
second everywhere: unsynced writes are lost, and so are names never synced into
their directory (with their files); from then on every operation fails with EIO
(a sync in progress does not complete) until `up` is written. Writing `sync`
makes everything durable (the `sync` command). A sync first waits SYNC_DELAY_SECONDS (default 0),
like a disk flushing its cache, while other requests go on: that widens the
window in which written data is not yet durable. The kernel caches nothing for this mount
(`direct_io`, zero attribute and entry timeouts), so a process started after a
cut reads only what survived. The test kills every process using the mount
before it cuts: an in-flight write then either reached us or did not, and is
unsynced either way.

What it does not model: a write torn inside one call (a `write` lands whole or,
if unsynced, not at all; a real disk may keep part of it — the journal's
checksums handle that, tested in tests/unit/test_journal.py), reordering of
unsynced writes to one file (we drop all of them; a disk may keep any subset),
and metadata that ext4's journal would persist without a directory sync (we are
stricter). See docs/RELIABILITY.md.
"""

from __future__ import annotations

import errno
import functools
import logging
import stat
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from mfusepy import FUSE, FuseOSError, Operations

CONTROL = "/.powercut"
log = logging.getLogger("powercut_fs")
F = TypeVar("F", bound=Callable[..., Any])
_lock = threading.RLock()  # libfuse calls from several threads; one operation at a time


def serialized(fn: F) -> F:
    @functools.wraps(fn)
    def call(self: PowerCutFS, path: str, *args: Any, **kwargs: Any) -> Any:
        with _lock:
            if self.dead and path != CONTROL:
                raise FuseOSError(errno.EIO)  # the power is off
            return fn(self, path, *args, **kwargs)
    return call  # type: ignore[return-value]


class Node:
    def __init__(self, mode: int) -> None:
        self.mode = mode
        self.data = bytearray()  # what programs see (files)
        self.durable = bytearray()  # what survives a power cut
        self.pending: list[tuple[int, bytes | None]] = []  # since the last sync: (offset, bytes) or (length, None)
        self.children: dict[str, Node] = {}  # directories: what programs see
        self.durable_children: dict[str, Node] = {}
        self.mtime = time.time_ns()

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    def sync(self) -> None:
        if self.is_dir:
            self.durable_children = dict(self.children)
            return
        for position, data in self.pending:  # replayed in order: like a disk cache written back
            _apply(self.durable, position, data)
        self.pending = []

    def change(self, position: int, data: bytes | None) -> None:
        """A write of `data` at `position`, or (data None) a truncation to `position` bytes."""
        _apply(self.data, position, data)
        self.pending.append((position, data))
        self.mtime = time.time_ns()


def _apply(buffer: bytearray, position: int, data: bytes | None) -> None:
    if data is None:
        if position < len(buffer):
            del buffer[position:]
        else:
            buffer.extend(b"\0" * (position - len(buffer)))
        return
    if position > len(buffer):
        buffer.extend(b"\0" * (position - len(buffer)))
    buffer[position:position + len(data)] = data


class PowerCutFS(Operations):  # type: ignore[misc]
    use_ns = True

    def __init__(self, sync_delay: float = 0.0) -> None:
        self.sync_delay = sync_delay
        self.dead = False  # between a cut and `up`: every operation fails, as on a disk without power
        self.root = Node(stat.S_IFDIR | 0o755)
        self.handles: dict[int, Node] = {}
        self.next_handle = 1
        self.syncs = 0

    # -- lookup ---------------------------------------------------------------

    def _parent(self, path: str) -> tuple[Node, str]:
        head, _, name = path.rstrip("/").rpartition("/")
        parent = self._node(head or "/")
        if not parent.is_dir:
            raise FuseOSError(errno.ENOTDIR)
        return parent, name

    def _node(self, path: str) -> Node:
        node = self.root
        for part in filter(None, path.split("/")):
            if not node.is_dir or part not in node.children:
                raise FuseOSError(errno.ENOENT)
            node = node.children[part]
        return node

    def _handle(self, node: Node) -> int:
        self.next_handle += 1
        self.handles[self.next_handle] = node
        return self.next_handle

    def _file(self, path: str, fh: int | None) -> Node:
        return self.handles[fh] if fh in self.handles else self._node(path)

    # -- attributes -----------------------------------------------------------

    @serialized
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        if path == CONTROL:
            return {"st_mode": stat.S_IFREG | 0o666, "st_nlink": 1, "st_size": 0}
        node = self._file(path, fh)
        return {"st_mode": node.mode, "st_nlink": 2 if node.is_dir else 1, "st_size": len(node.data),
                "st_uid": 0, "st_gid": 0, "st_atime": node.mtime, "st_mtime": node.mtime,
                "st_ctime": node.mtime}

    @serialized
    def chmod(self, path: str, mode: int) -> int:
        node = self._node(path)
        node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
        return 0

    @serialized
    def chown(self, path: str, uid: int, gid: int) -> int:
        return 0

    @serialized
    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        self._node(path).mtime = times[1] if times else time.time_ns()
        return 0

    @serialized
    def statfs(self, path: str) -> dict[str, int]:
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": 1 << 20, "f_bfree": 1 << 19,
                "f_bavail": 1 << 19, "f_files": 1 << 16, "f_ffree": 1 << 15, "f_namemax": 255}

    # -- directories ----------------------------------------------------------

    @serialized
    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *self._node(path).children]

    @serialized
    def opendir(self, path: str) -> int:
        return self._handle(self._node(path))

    @serialized
    def releasedir(self, path: str, fh: int) -> int:
        self.handles.pop(fh, None)
        return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        return self.fsync(path, datasync, fh)

    @serialized
    def mkdir(self, path: str, mode: int) -> int:
        parent, name = self._parent(path)
        if name in parent.children:
            raise FuseOSError(errno.EEXIST)
        parent.children[name] = Node(stat.S_IFDIR | (mode & 0o7777))
        return 0

    @serialized
    def rmdir(self, path: str) -> int:
        parent, name = self._parent(path)
        node = self._node(path)
        if node.children:
            raise FuseOSError(errno.ENOTEMPTY)
        del parent.children[name]
        return 0

    @serialized
    def unlink(self, path: str) -> int:
        parent, name = self._parent(path)
        if name not in parent.children:
            raise FuseOSError(errno.ENOENT)
        del parent.children[name]
        return 0

    @serialized
    def rename(self, old: str, new: str) -> int:
        old_parent, old_name = self._parent(old)
        new_parent, new_name = self._parent(new)
        node = self._node(old)
        target = new_parent.children.get(new_name)
        if target is not None and target.is_dir and target.children:
            raise FuseOSError(errno.ENOTEMPTY)
        del old_parent.children[old_name]
        new_parent.children[new_name] = node
        return 0

    # -- files ------------------------------------------------------------------

    @serialized
    def create(self, path: str, mode: int, fi: Any = None) -> int:
        parent, name = self._parent(path)
        node = parent.children.get(name)
        if node is None:
            node = parent.children[name] = Node(stat.S_IFREG | (mode & 0o7777))
        return self._handle(node)

    @serialized
    def open(self, path: str, flags: int) -> int:
        return 0 if path == CONTROL else self._handle(self._node(path))

    @serialized
    def release(self, path: str, fh: int) -> int:
        self.handles.pop(fh, None)
        return 0

    @serialized
    def flush(self, path: str, fh: int) -> int:
        return 0

    @serialized
    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return bytes(self._file(path, fh).data[offset:offset + size])

    @serialized
    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        if path == CONTROL:
            self._control(bytes(data).decode().strip())
            return len(data)
        self._file(path, fh).change(offset, bytes(data))
        return len(data)

    @serialized
    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        if path == CONTROL:
            return 0
        self._file(path, fh).change(length, None)
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        time.sleep(self.sync_delay)  # the flush takes time; other requests go on meanwhile
        with _lock:
            if self.dead:  # the power went during the flush: it did not happen
                raise FuseOSError(errno.EIO)
            self._file(path, fh).sync()
            self.syncs += 1
        return 0

    # -- the control file -------------------------------------------------------

    def _control(self, command: str) -> None:
        if command == "sync":
            self._walk(self.root, lambda node: node.sync())
            log.info("sync: everything is durable")
        elif command == "up":
            self.dead = False
            log.info("power is back")
        elif command == "cut":
            lost = {"writes": 0, "files": 0, "names": 0}
            self._cut(self.root, lost)
            self.dead = True
            log.info("power cut: dropped %(writes)d unsynced writes in %(files)d files and "
                     "%(names)d unsynced directory entries (after %(syncs)d syncs)", {**lost, "syncs": self.syncs})
        else:
            raise FuseOSError(errno.EINVAL)

    def _walk(self, node: Node, fn: Any) -> None:
        fn(node)
        for child in node.children.values():
            self._walk(child, fn)

    def _cut(self, node: Node, lost: dict[str, int]) -> None:
        if node.is_dir:
            lost["names"] += len(set(node.children.items()) ^ set(node.durable_children.items()))
            node.children = dict(node.durable_children)
            for child in node.children.values():
                self._cut(child, lost)
        else:
            lost["writes"] += len(node.pending)
            lost["files"] += bool(node.pending)
            node.data, node.pending = bytearray(node.durable), []


def main(mountpoint: str, sync_delay: float = 0.0) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    FUSE(PowerCutFS(sync_delay), mountpoint, foreground=True, direct_io=True,
         attr_timeout=0, entry_timeout=0, negative_timeout=0, fsname="powercutfs")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
