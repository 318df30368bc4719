"""Mount `powercut_fs` for a test, and cut the power of a whole cluster whose data dirs live on it.

    with mounted(tmp_path / "disk") as disk:            # skips without /dev/fuse or libfuse 3
        ...data dirs under disk.path...; disk.sync()
        cut_power(cluster, disk)                         # kill -9 all, drop unsynced data
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.harness import ROOT, Cluster


class Disk:
    def __init__(self, path: Path, log_path: Path) -> None:
        self.path = path
        self.log_path = log_path

    def control(self, command: str) -> None:
        with open(self.path / ".powercut", "w") as f:
            f.write(command)

    def sync(self) -> None:
        """Everything written so far becomes durable (the `sync` command)."""
        self.control("sync")

    def cut(self) -> None:
        """Drop every write and directory entry that was not synced; fail every operation until `up`."""
        self.control("cut")

    def up(self) -> None:
        self.control("up")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def unavailable_reason() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse on this machine: the power-cut file system needs FUSE"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is missing (Debian package fuse3; ./scripts/test installs it as root)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"mfusepy cannot load libfuse 3 ({exc}); ./scripts/test installs it as root"
    return None


@contextlib.contextmanager
def mounted(path: Path, sync_delay: float = 0.0) -> Iterator[Disk]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    path.mkdir(parents=True, exist_ok=True)
    log_path = path.with_name(path.name + ".log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tests.faults.powercut_fs", str(path), str(sync_delay)],
                                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while not os.path.ismount(path):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"powercut_fs did not mount:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.05)
        yield Disk(path, log_path)
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(path)], check=False, capture_output=True)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def place_data_dirs(cluster: Cluster, disk: Disk) -> None:
    """Every node's data dir on the disk, created and synced (as if made at install time)."""
    for node in cluster.nodes:
        node.data_dir = disk.path / f"node{node.index}"
        node.log_path.parent.mkdir(parents=True, exist_ok=True)  # logs stay off the disk
        node.data_dir.mkdir(parents=True, exist_ok=True)
    disk.sync()


def cut_power(cluster: Cluster, disk: Disk) -> None:
    """The disk loses what was not synced and stops; every node is killed (-9) at once; power back."""
    procs = [node.proc for node in cluster.nodes if node.running and node.proc is not None]
    disk.cut()  # from here a sync fails, so nothing written after this can be acknowledged as durable
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
    for proc in procs:
        proc.wait(timeout=10)
    for node in cluster.nodes:
        node.paused = False
        cluster.close_client(node.index)
    disk.up()
