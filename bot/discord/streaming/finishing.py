"""Replies writing their final text: a shutdown's cancel must not cut them half-way, drain waits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

# Across all turns; drain() waits for these after it has cut the turns.
_FINISHING: set[asyncio.Task[None]] = set()


def begin_finishing(final_writes: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    task = asyncio.create_task(final_writes)
    _FINISHING.add(task)
    task.add_done_callback(_FINISHING.discard)
    return task


async def through_cancel(task: asyncio.Task[None]) -> None:
    """Wait for `task`; a cancel of the waiter lets it end first (a reply cut there would keep
    its streaming indicator and miss parts), then is raised."""
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            await task
        raise


async def wait_for_finishing(timeout_s: float) -> None:
    if _FINISHING:
        await asyncio.wait(set(_FINISHING), timeout=timeout_s)


async def cancel_tasks(*tasks: asyncio.Task[None] | None) -> None:
    """End a reply's background tasks (flusher, typing) before its final writes."""
    for task in tasks:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
