"""A fault-injecting TCP proxy in front of every node's Raft port (real partitions, no root).

Each node advertises its Raft address `127.0.0.1:raft_port` (its identity in
pysyncobj) but binds `127.0.0.1:bind_port` (`--raft-bind`); the `Network`
listens on every advertised port and forwards to the bound one. pysyncobj opens
one connection per pair of members, and the connecting side's first frame is
its own address (length-prefixed zlib'd pickle, when there is no
`--cluster-secret`), so the proxy knows which member is on each side without
unpickling anything and can cut exactly the links a partition names.

A cut link is a black hole, as with a dropped packet: bytes in both directions
are read and discarded, nothing is answered, new connections across the cut
are accepted and then starve, and the members notice only by their own
timeouts. Healing closes every connection that lost bytes (a half-forwarded
frame must never resume) so the members reconnect cleanly.

    net = Network({0: (raft_port0, bind_port0), 1: (...), 2: (...)})
    net.start()
    net.partition([{0}, {1, 2}])   # node 0 alone in a minority
    net.heal()
    net.stop()

Runs an asyncio loop on a daemon thread; every public method is thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

FIRST_FRAME_TIMEOUT = 5.0
CHUNK = 65536
MAX_FIRST_FRAME = 4096


@dataclass(eq=False)
class Link:
    """One proxied connection from member `src` (None until known) to member `dst`."""

    dst: int
    src: int | None = None
    cut: bool = False
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    def close(self) -> None:
        for writer in self.writers:
            with contextlib.suppress(Exception):
                writer.transport.abort()


class Network:
    """Proxies for every member's Raft port, and the set of cut member pairs."""

    def __init__(self, ports: Mapping[int, tuple[int, int]], host: str = "127.0.0.1") -> None:
        self.ports = dict(ports)  # member -> (advertised port, bound port)
        self.host = host
        self._identities = {f"{host}:{adv}".encode(): i for i, (adv, _) in self.ports.items()}
        self._cut: set[frozenset[int]] = set()
        self._links: set[Link] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="raft-proxy", daemon=True)
        self._servers: list[asyncio.base_events.Server] = []
        self.links_cut = 0  # connections that lost bytes to a cut, over the whole run

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> Network:
        self._thread.start()
        self._run(self._listen_all())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._run(self._close_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Network:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults ---------------------------------------------------------------

    def partition(self, groups: Iterable[Iterable[int]]) -> None:
        """Cut every link between members of different groups (members not named are
        cut from everyone); links inside a group are untouched."""
        group_of: dict[int, int] = {}
        for g, members in enumerate(groups):
            for member in members:
                group_of[member] = g
        cut = set()
        members = sorted(self.ports)
        for a in members:
            for b in members:
                if a < b and (a not in group_of or group_of.get(a) != group_of.get(b)):
                    cut.add(frozenset((a, b)))
        self._run(self._apply(cut))

    def isolate(self, member: int) -> None:
        self.partition([{member}, set(self.ports) - {member}])

    def cut(self, *pairs: tuple[int, int]) -> None:
        """Cut exactly these links, keep every other one (e.g. a leader that still
        reaches one follower but not the other)."""
        self._run(self._apply({frozenset(pair) for pair in pairs}))

    def heal(self) -> None:
        self._run(self._apply(set()))

    def is_cut(self, a: int, b: int) -> bool:
        return frozenset((a, b)) in self._cut

    @property
    def partitioned(self) -> bool:
        return bool(self._cut)

    # -- the loop thread ------------------------------------------------------

    def _run(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)  # type: ignore[arg-type]

    async def _listen_all(self) -> None:
        for member, (advertised, _) in self.ports.items():
            server = await asyncio.start_server(
                lambda r, w, m=member: self._accept(m, r, w), self.host, advertised,
                reuse_address=True,
            )
            self._servers.append(server)

    async def _close_all(self) -> None:
        for server in self._servers:
            server.close()
        for link in list(self._links):
            link.close()
        self._links.clear()

    async def _apply(self, cut: set[frozenset[int]]) -> None:
        healed = self._cut - cut
        self._cut = cut
        for link in list(self._links):
            pair = frozenset((link.src, link.dst)) if link.src is not None else None
            if pair in cut and not link.cut:
                link.cut = True
                self.links_cut += 1
            elif link.cut and (pair is None or pair in healed or pair not in cut):
                link.close()  # it lost bytes: the members must reconnect
                self._links.discard(link)

    async def _accept(self, dst: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = Link(dst, writers=[writer])
        self._links.add(link)
        try:
            first = await asyncio.wait_for(_read_first_frame(reader), FIRST_FRAME_TIMEOUT)
            link.src = self._identify(first)
            if link.src is None or frozenset((link.src, dst)) in self._cut:
                link.cut = True
                await _drain_forever(reader)
                return
            up_reader, up_writer = await asyncio.open_connection(self.host, self.ports[dst][1])
            link.writers.append(up_writer)
            up_writer.write(first)
            await asyncio.gather(_pump(reader, up_writer, link), _pump(up_reader, writer, link))
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            pass
        finally:
            link.close()
            self._links.discard(link)

    def _identify(self, frame: bytes) -> int | None:
        try:
            text = zlib.decompress(frame[4:])
        except zlib.error:
            return None  # encrypted Raft: the proxy cannot tell who is calling
        for address, member in self._identities.items():
            if address in text:
                return member
        return None


async def _read_first_frame(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(4)
    (length,) = struct.unpack("i", header)
    if not 0 < length <= MAX_FIRST_FRAME:
        raise ValueError(f"unexpected first frame length {length}")
    return header + await reader.readexactly(length)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link) -> None:
    while True:
        data = await reader.read(CHUNK)
        if not data:
            link.close()
            return
        if link.cut:
            continue  # black hole: the bytes are lost, like dropped packets
        writer.write(data)
        await writer.drain()


async def _drain_forever(reader: asyncio.StreamReader) -> None:
    while await reader.read(CHUNK):
        pass
