"""The typing indicator a reply shows until its first words: paced to fit the global window."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from bot.discord.streaming.retry import describe
from bot.discord.streaming.write_scheduler import WriteScheduler

log = logging.getLogger(__name__)

TYPING_REFRESH_S = 8.0  # Discord shows "typing" for about 10 s per request
TYPING_RETRY_S = 0.05
TYPING_DELAY_S = 0.15


async def keep_typing(channel: Any, budget: WriteScheduler, shown: Callable[[], bool]) -> None:
    # An answer whose first words come quickly needs no indicator: the wait keeps a burst of
    # new turns from spending the global budget their first parts need.
    await asyncio.sleep(TYPING_DELAY_S)
    while not shown():
        # Typing never waits behind message writes, but it must fit the bot's global
        # window: when a burst of turns fills it, try again a moment later.
        if not budget.may_type():
            await asyncio.sleep(TYPING_RETRY_S)
            continue
        try:
            await channel.typing()
        except Exception as exc:
            log.debug("typing indicator failed: %s", describe(exc))
        await asyncio.sleep(TYPING_REFRESH_S)
