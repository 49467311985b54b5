"""Shares one channel's message budget among the replies streaming into it at the same time.

Discord allows about 5 message sends and edits per 5 s per channel. Each reply edits at most
once per `edit_interval_s`; with several replies in one channel that adds up, so the interval
grows with the number of replies streaming there. First parts (a user's first sight of an
answer) go ahead of edits, which only refresh text that is already visible.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

CHANNEL_EDITS_PER_S = 1.0  # Discord's per-channel budget, ~5 requests per 5 s


class ChannelPacer:
    def __init__(self) -> None:
        self._streaming: Counter[int] = Counter()
        self._sending: Counter[int] = Counter()
        self._sends_done = asyncio.Condition()

    @contextmanager
    def streaming(self, channel_id: int) -> Iterator[None]:
        self._streaming[channel_id] += 1
        try:
            yield
        finally:
            self._streaming[channel_id] -= 1
            if not self._streaming[channel_id]:
                del self._streaming[channel_id]

    def edit_interval(self, channel_id: int, base_s: float) -> float:
        return max(base_s, self._streaming[channel_id] / CHANNEL_EDITS_PER_S)

    @asynccontextmanager
    async def sending(self, channel_id: int) -> AsyncIterator[None]:
        self._sending[channel_id] += 1
        try:
            yield
        finally:
            self._sending[channel_id] -= 1
            if not self._sending[channel_id]:
                del self._sending[channel_id]
            async with self._sends_done:
                self._sends_done.notify_all()

    async def wait_for_sends(self, channel_id: int) -> None:
        """Edits wait here while a new message is on its way in the same channel."""
        async with self._sends_done:
            await self._sends_done.wait_for(lambda: not self._sending[channel_id])
