"""What a node puts on the wire to its peers (cluster/raft/wire.py): pysyncobj's framing,
with stored zlib blocks and protocol-4 pickles, and every older frame still read."""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Iterator

import pysyncobj.pickle as pysyncobj_pickle
import pytest
from pysyncobj import tcp_connection

from cluster.raft.wire import plain_raft_messages

# an append of one entry: a batch of 100 transitions is ~18 KB of JSON
ENTRY = b'{"v":1,"c":{"k":"batch","operations":[' + b'{"machine":"register","id":"k1"},' * 540 + b"]}}"
MESSAGE = {"type": "append_entries", "term": 3, "commit_index": 9, "prevLogIdx": 9,
           "prevLogTerm": 3, "entries": [(b"\x00" + ENTRY, 10, 3)]}


@pytest.fixture
def plain() -> Iterator[None]:
    saved = tcp_connection.zlib, getattr(pysyncobj_pickle, "__protocol")
    plain_raft_messages()
    yield
    tcp_connection.zlib = saved[0]
    setattr(pysyncobj_pickle, "__protocol", saved[1])


def frame(message: object) -> bytes:
    """What pysyncobj's `TcpConnection.send` writes (before the length prefix)."""
    return tcp_connection.zlib.compress(pysyncobj_pickle.dumps(message), 3)


def read(data: bytes) -> object:
    """What pysyncobj's `TcpConnection` does with a frame it receives."""
    return pysyncobj_pickle.loads(tcp_connection.zlib.decompress(data))


def test_messages_go_out_unpickled_bytes_and_uncompressed(plain: None) -> None:
    pickled = pysyncobj_pickle.dumps(MESSAGE)
    assert pickled[:2] == b"\x80\x04"  # protocol 4: bytes as bytes, no latin-1 text
    assert ENTRY in pickled
    data = frame(MESSAGE)
    assert len(data) >= len(pickled)  # stored blocks: not compressed
    assert read(data) == MESSAGE


def test_frames_of_an_older_node_are_still_read(plain: None) -> None:
    older = zlib.compress(pickle.dumps(MESSAGE, protocol=2), 3)
    assert len(older) < len(ENTRY) / 2
    assert read(older) == MESSAGE
