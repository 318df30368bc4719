"""Times the native register puts of src/lib.rs the way `fsmcluster bench core` times the
engine's (its fourth line): 2,000 entries of 100 `put`s of 64-character values over 10,000
objects, each entry decoded from its bytes inside the timed loop. Run from this folder
after `./build` with the project's Python: `../../../.venv/bin/python bench.py`."""

import time

import msgspec
import regspike  # built by ./build

OBJECTS, ENTRIES, SIZE = 10_000, 2_000, 100

store = regspike.Store()
for i in range(OBJECTS):
    store.create(f"k{i:06d}")
entries = [msgspec.json.encode([(f"k{(b * SIZE + j) % OBJECTS:06d}", f"{b:064d}") for j in range(SIZE)])
           for b in range(ENTRIES)]
decoder = msgspec.json.Decoder(list[tuple[str, str]])
for _ in range(3):
    started = time.process_time()
    for at_ms, blob in enumerate(entries):
        store.put_batch(decoder.decode(blob), at_ms)
    seconds = time.process_time() - started
    print(f"native register puts in batches of {SIZE}, decoded  {ENTRIES * SIZE / seconds:>12,.0f}/s "
          f"({seconds / (ENTRIES * SIZE) * 1e6:.2f} µs each)")
