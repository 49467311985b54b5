"""Discord requests that failed in transit, sent again: discord.py retries only some of them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
import discord

log = logging.getLogger(__name__)

# A request that failed in transit (dropped connection, timeout, 5xx) is tried again after these.
RETRY_DELAYS_S = (0.5, 1.5, 3.0)
# Discord answers a message write in well under a second. One it took and never answered would
# hold the reply for aiohttp's default of 300 s; given up after this, it is sent again. Long
# enough for a rate-limit wait the write budget lets discord.py make inside a request. Not for
# file uploads, which may take long on a slow link.
WRITE_TIMEOUT_S = 10.0

T = TypeVar("T")


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    """A request that may work if sent again: the connection or Discord's side failed.
    discord.py passes aiohttp's connection errors and timeouts through unchanged."""
    if isinstance(exc, discord.HTTPException):
        return exc.status >= 500 or exc.status == 429
    return isinstance(exc, aiohttp.ClientError | TimeoutError | OSError | discord.RateLimited)


def timed(
    request: Callable[[], Awaitable[T]], timeout_s: float = WRITE_TIMEOUT_S
) -> Callable[[], Awaitable[T]]:
    """A Discord write given up if no answer comes in time: the TimeoutError is transient."""

    async def run() -> T:
        async with asyncio.timeout(timeout_s):
            return await request()

    return run


async def with_retries(
    what: str, call: Callable[[], Awaitable[T]], delays: tuple[float, ...] = RETRY_DELAYS_S
) -> T:
    """Runs a Discord request, sending it again after transient failures."""
    for delay in (*delays, None):
        try:
            return await call()
        except Exception as exc:
            if delay is None or not is_transient(exc):
                raise
            log.info("%s failed (%s); trying again in %.1f s", what, describe(exc), delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
