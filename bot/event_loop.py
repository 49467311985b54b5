"""The event loop the bot runs on: uvloop where it is installed (Linux and macOS), else asyncio's.

The bot's CPU goes mostly to many small callbacks: a socket read per streamed delta, a wake-up
per task step, a timer per read timeout. uvloop runs those in C (libuv); in the bench's s4 (200
answers streaming at once) the bot spent about a quarter less CPU per delta on it than on
asyncio's loop (bench/README.md). It is a drop-in loop: discord.py, aiohttp, aiosqlite's threads,
MCP servers' subprocesses and signal handlers work on it unchanged. Where uvloop cannot be
installed (Windows), asyncio's own loop runs the same code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop maker, or None (asyncio's default) where uvloop is not installed."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on the loop above."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
