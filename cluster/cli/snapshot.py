"""`fsmcluster snapshot list|inspect|restore`: see and use stored snapshots.

    fsmcluster snapshot list    --redis redis://127.0.0.1:6379/0 --cluster-id prod
    fsmcluster snapshot inspect --redis URL --cluster-id prod [INDEX|latest]
    fsmcluster snapshot restore --redis URL --cluster-id prod [INDEX|latest] --to /var/lib/fsm/n1

`--data-dir DIR` reads a node's own file store (`DIR/snapshots`) instead of Redis.
`restore` writes the snapshot where a node started with `--data-dir` on that
directory loads it. It restores the state as of the snapshot's Raft index only:
when every node lost its disk, writes after that index are gone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from cluster.core.records import iso_ms
from cluster.errors import SnapshotError
from cluster.storage.base import SnapshotMeta, SnapshotStore, latest_valid
from cluster.storage.file import FileStore, node_store_dir
from cluster.storage.recovery import (
    JOURNAL_FILE,
    SNAPSHOT_FILE,
    describe,
    summarize_payload,
    write_snapshot_file,
)


def add_snapshot_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "snapshot", help="list, inspect and restore stored snapshots",
        description="See and use the snapshots a cluster stored in Redis or in a node's data dir.",
    )
    commands = parser.add_subparsers(dest="snapshot_command", metavar="SUBCOMMAND", required=True)
    listing = commands.add_parser("list", help="stored snapshots, newest first")
    _source_arguments(listing)
    listing.add_argument("--json", action="store_true", help="print JSON lines")
    listing.set_defaults(handler=run_list)
    inspect = commands.add_parser("inspect", help="verify one snapshot and summarize its content")
    _source_arguments(inspect)
    inspect.add_argument("which", nargs="?", default="latest", help="a Raft index or 'latest'")
    inspect.set_defaults(handler=run_inspect)
    restore = commands.add_parser("restore", help="write a snapshot into a node's data dir")
    _source_arguments(restore)
    restore.add_argument("which", nargs="?", default="latest", help="a Raft index or 'latest'")
    restore.add_argument("--to", required=True, metavar="DIR", help="the data dir of the node to start")
    restore.add_argument("--force", action="store_true",
                         help="replace an existing journal/snapshot there (moved aside, not deleted)")
    restore.set_defaults(handler=run_restore)


def _source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis", metavar="URL", help="Redis URL the cluster stores snapshots in")
    parser.add_argument("--cluster-id", default="default", help="cluster id (default: default)")
    parser.add_argument("--data-dir", metavar="DIR", help="a node's data dir (its file store)")


def open_store(args: argparse.Namespace) -> SnapshotStore:
    if bool(args.redis) == bool(args.data_dir):
        raise SnapshotError("give exactly one of --redis URL or --data-dir DIR")
    if args.redis:
        from cluster.storage.redis import RedisStore

        return RedisStore.from_url(args.redis, args.cluster_id)
    return FileStore(node_store_dir(args.data_dir), args.cluster_id)


def _pick(store: SnapshotStore, which: str) -> tuple[SnapshotMeta, bytes]:
    if which == "latest":
        found = latest_valid(store)
        if found is None:
            raise SnapshotError(f"no valid snapshot for cluster {store.cluster_id!r} in the {store.kind} store")
        return found
    if not (which.isascii() and which.isdigit() and len(which) <= 18):
        raise SnapshotError(f"expected a Raft index or 'latest', got {which!r}")
    return store.load(int(which))


def _run(args: argparse.Namespace, body: Any) -> int:
    try:
        store = open_store(args)
    except SnapshotError as exc:
        print(f"fsmcluster snapshot: {exc}", file=sys.stderr)
        return 2
    try:
        return int(body(store))
    except SnapshotError as exc:
        print(f"fsmcluster snapshot: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def run_list(args: argparse.Namespace) -> int:
    def body(store: SnapshotStore) -> int:
        metas = store.list_snapshots()
        if args.json:
            for meta in metas:
                print(json.dumps(meta.to_json()))
            return 0
        if not metas:
            print(f"no snapshots for cluster {store.cluster_id!r} in the {store.kind} store")
            return 0
        print(f"{'INDEX':>10} {'TERM':>6} {'SIZE':>12}  {'TAKEN AT':<24} NODE")
        for m in metas:
            print(f"{m.index:>10} {m.term:>6} {m.size:>12}  {iso_ms(m.created_at_ms) or '?':<24} {m.node}")
        return 0

    return _run(args, body)


def run_inspect(args: argparse.Namespace) -> int:
    def body(store: SnapshotStore) -> int:
        meta, payload = _pick(store, args.which)
        report = {**meta.to_json(), "created_at": iso_ms(meta.created_at_ms), "verified": True,
                  "content": summarize_payload(payload)}
        print(json.dumps(report, indent=2))
        return 0

    return _run(args, body)


def run_restore(args: argparse.Namespace) -> int:
    target = Path(args.to)

    def body(store: SnapshotStore) -> int:
        meta, payload = _pick(store, args.which)
        summarize_payload(payload)  # refuse a payload pysyncobj could not load
        existing = [target / name for name in (JOURNAL_FILE, SNAPSHOT_FILE) if (target / name).exists()]
        if existing and not args.force:
            print(f"fsmcluster snapshot: {target} already holds {', '.join(p.name for p in existing)}; "
                  "a node with a journal recovers from it. Use --force to move them aside.",
                  file=sys.stderr)
            return 1
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for path in existing:
            shutil.move(str(path), str(path.with_name(f"{path.name}.before-restore-{stamp}")))
        write_snapshot_file(target, payload)
        print(f"restored {describe(meta, store.kind)} into {target / SNAPSHOT_FILE}")
        print(f"the node started on {target} begins at Raft index {meta.index}: any write "
              f"committed after index {meta.index} is in this snapshot only if a live member "
              "still holds it in its log; if every node lost its disk, those writes are lost.")
        return 0

    return _run(args, body)
