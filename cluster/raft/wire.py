"""Raft messages and commands on the wire: pysyncobj's framing, without its needless work.

pysyncobj frames every message as `zlib.compress(pickle.dumps(m, protocol=2), 3)` and
pickles every command (ours carry an entry's bytes) with protocol 2 too. For an entry
carrying a batch of 100 transitions (18 KB), per message:

- zlib at level 3: ~93 µs to compress, ~33 µs to decompress, to save bytes on loopback
  or a LAN. Paid for every follower an entry goes to, and again for every command a
  follower forwards to the leader: ~4 % of the cluster's CPU under batches.
- pickle protocol 2 has no opcode for `bytes`: each `bytes` goes through a latin-1 text
  and back, ~23 µs to pickle 16 KB where protocol 4 takes ~1.4 µs.

`plain_raft_messages()` makes pysyncobj write stored zlib blocks (level 0, ~9 µs) and
pickle with protocol 4. Both are what any pysyncobj on Python 3 reads (`zlib.decompress`
and `pickle.loads` take every level and protocol), and this node still reads an older
node's messages: a rolling upgrade keeps working. The log holds the same commands: an
entry's bytes are the argument of the pickled call, unchanged.
"""

from __future__ import annotations

import zlib
from types import SimpleNamespace

import pysyncobj.pickle as pysyncobj_pickle
from pysyncobj import tcp_connection

ZLIB_LEVEL = 0  # stored blocks: framing and a checksum, no compression
PICKLE_PROTOCOL = 4  # has BINBYTES; read by every Python 3


def _compress(data: bytes, level: int = -1) -> bytes:
    return zlib.compress(data, ZLIB_LEVEL)


def plain_raft_messages() -> None:
    """From now on this process's pysyncobj writes stored zlib blocks and protocol-4 pickles."""
    if getattr(tcp_connection, "zlib", None) is None or not hasattr(pysyncobj_pickle, "__protocol"):
        raise RuntimeError("pysyncobj frames messages differently: this pysyncobj is not supported")
    tcp_connection.zlib = SimpleNamespace(compress=_compress, decompress=zlib.decompress)  # type: ignore[attr-defined]
    setattr(pysyncobj_pickle, "__protocol", PICKLE_PROTOCOL)  # a module global; not name-mangled
