"""The node's GC policy leaves young collections to its periodic collection.

Under a load of batches CPython's default threshold (700 new containers) ran
hundreds of young collections a second; with the policy running, allocating
thousands of live containers triggers none.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from cluster import gc_policy


def test_the_policy_raises_the_young_threshold_and_young_collections_stop() -> None:
    saved = gc.get_threshold()
    collections: list[int] = []

    def seen(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    async def run_policy_briefly() -> None:
        task = asyncio.get_running_loop().create_task(gc_policy.freeze_periodically(60.0))
        await asyncio.sleep(0)  # the policy's first step runs, then it sleeps
        task.cancel()

    try:
        asyncio.run(run_policy_briefly())
        assert gc.get_threshold()[0] == gc_policy.YOUNG_THRESHOLD
        assert gc.get_threshold()[1:] == saved[1:]
        gc.collect()
        gc.callbacks.append(seen)
        try:
            kept = [{"i": i} for i in range(gc_policy.YOUNG_THRESHOLD // 2)]
        finally:
            gc.callbacks.remove(seen)
        assert len(kept) == gc_policy.YOUNG_THRESHOLD // 2
        assert collections == [], f"automatic collections ran: {collections[:10]}"
    finally:
        gc.set_threshold(*saved)
