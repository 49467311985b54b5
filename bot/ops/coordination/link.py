"""The connection to Redis, and what happens when it fails: say so once, go on alone, come back.

A process must never stop answering because Redis is away: every call returns None then, and
the callers fall back to what one process can decide alone (its share of the global limit, its
own counts). One failure marks Redis down; calls stay local for a second, then one tries again.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger("bot.coordination")

T = TypeVar("T")
RETRY_AFTER_S = 1.0
TIMEOUT_S = 0.5
CONNECTIONS = 16
POOL_WAIT_S = 5.0


def default_prefix(token: str) -> str:
    """`mcpcord:<application id>`: a bot token starts with its bot's id in base64, which every
    process of the token shares. A token not shaped like that gets a hash of itself instead."""
    head = token.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)).decode()
    except ValueError:
        decoded = ""
    if decoded.isdigit():
        return f"mcpcord:{decoded}"
    return "mcpcord:" + hashlib.sha256(token.encode()).hexdigest()[:16]


class Link:
    """Redis, or None while it is unreachable. `watch` callbacks hear of every change."""

    def __init__(self, url: str, prefix: str, *, clock: Callable[[], float] = time.monotonic):
        self.prefix = prefix
        # A busy bot asks many times at once: calls wait their turn for a connection (up to
        # the timeout) instead of failing with "too many connections" as if Redis were down.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=CONNECTIONS,
            timeout=POOL_WAIT_S,
            socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self.redis: Any = Redis(connection_pool=pool)
        self.up = True
        self._clock = clock
        self._retry_at = 0.0
        self.back_at = float("-inf")  # when Redis last came back (clock), for a grace period
        self.down_at = float("-inf")  # when it was last found away
        self._watchers: list[Callable[[bool], None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def since_back(self) -> float:
        return self._clock() - self.back_at

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def watch(self, callback: Callable[[bool], None]) -> None:
        self._watchers.append(callback)

    def script(self, lua: str) -> Any:
        return self.redis.register_script(lua)

    async def call(self, make: Callable[[], Awaitable[T]]) -> T | None:
        """The call's result, or None while Redis is away (then nothing was done there).

        The call runs as a task of its own, shielded: a caller cancelled meanwhile (a reply's
        flush loop that finish() stops) gets its CancelledError at once, while redis-py never
        sees it. Cancelled inside redis-py's read timeout, Python 3.11 could lose it: the
        renderer's loop then ran on and its reply never got its final text.
        """
        if not self.up and self._clock() < self._retry_at:
            return None
        task = asyncio.get_running_loop().create_task(self._attempt(make))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    async def _attempt(self, make: Callable[[], Awaitable[T]]) -> T | None:
        try:
            result = await make()
        except (RedisError, OSError, TimeoutError) as exc:
            self._retry_at = self._clock() + RETRY_AFTER_S
            if self.up:
                self.up = False
                self.down_at = self._clock()
                log.warning(
                    "coordination: Redis is unreachable (%s); this process goes on alone with "
                    "its share of Discord's global limit and its own limits.* counts until it "
                    "is back",
                    type(exc).__name__,
                )
                self._tell(False)
            return None
        if not self.up:
            self.up = True
            self.back_at = self._clock()
            log.warning("coordination: Redis is back; the processes share one window again")
            self._tell(True)
        return result

    def later(self, make: Callable[[], Awaitable[Any]]) -> None:
        """A call nobody waits for (a count, a release); kept until done, closed with the link."""
        if self.up or self._clock() >= self._retry_at:
            task = asyncio.get_running_loop().create_task(self._attempt(make))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2)
        for task in self._tasks:
            task.cancel()
        await self.redis.aclose(close_connection_pool=True)

    def _tell(self, up: bool) -> None:
        for callback in self._watchers:
            callback(up)
