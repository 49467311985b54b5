"""Watching a stdio server from the outside: its stderr (to the log) and its end (EOF)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio

from bot.tools.mcp_format import redact

stderr_log = logging.getLogger("bot.tools.mcp.stderr")

# stderr lines logged at INFO per server: a burst of this many, then one per second on average.
STDERR_BURST = 20
STDERR_PER_S = 1.0


class StderrSink:
    """A pipe for a stdio server's stderr: lines go to the log (INFO, rate-limited, secrets
    blanked), the last few explain crashes."""

    def __init__(self, server: str, secrets: list[str] | None = None) -> None:
        read_fd, write_fd = os.pipe()
        self.writer = os.fdopen(write_fd, "w")
        self.tail: deque[str] = deque(maxlen=3)
        self._server = server
        self._secrets = secrets or []
        self._tokens = float(STDERR_BURST)
        self._stamp = time.monotonic()
        self._dropped = 0
        # A thread, because a blocking pipe read is simplest and works under any event loop.
        self._thread = threading.Thread(target=self._pump, args=(read_fd,), daemon=True)
        self._thread.start()

    def _pump(self, fd: int) -> None:
        with open(fd, encoding="utf-8", errors="replace") as stream:
            for line in stream:
                if line := redact(line.rstrip(), self._secrets):
                    self.tail.append(line)
                    self._log(line)
        if self._dropped:
            stderr_log.info("[%s] (%d more stderr lines not logged)", self._server, self._dropped)

    def _log(self, line: str) -> None:
        # A chatty server must not flood the bot's log: a token bucket per server.
        now = time.monotonic()
        self._tokens = min(STDERR_BURST, self._tokens + (now - self._stamp) * STDERR_PER_S)
        self._stamp = now
        if self._tokens < 1:
            self._dropped += 1
            return
        self._tokens -= 1
        if self._dropped:
            stderr_log.info("[%s] (%d stderr lines not logged)", self._server, self._dropped)
            self._dropped = 0
        stderr_log.info("[%s] %s", self._server, line)

    def close_writer(self) -> None:
        # Once the child is spawned it holds its own copy; ours must go for EOF to arrive.
        if not self.writer.closed:
            self.writer.close()

    async def last_line(self) -> str | None:
        await asyncio.to_thread(self._thread.join, 0.5)
        return self.tail[-1] if self.tail else None


class WatchedReceive:
    """The transport's read stream, reporting its end: a stdio server that exits while idle
    is noticed at once, not by the next call failing half-way."""

    def __init__(self, inner: Any, on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # e.g. the SDK's `last_context`

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._on_end()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> WatchedReceive:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> WatchedReceive:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


@asynccontextmanager
async def watched(transport: Any, on_end: Callable[[], None]) -> AsyncIterator[Any]:
    async with transport as (read, write):
        yield WatchedReceive(read, on_end), write
