"""Status reactions on the asker's message: at most one of the bot's at a time, the newest state
wins, and each request goes at the lowest priority of anything the bot sends to Discord."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Container
from functools import partial
from typing import Any

import discord

from bot.config.discord_sections import ReactionsConfig
from bot.core import events as ev
from bot.discord.streaming.retry import describe
from bot.discord.streaming.write_scheduler import WriteScheduler

log = logging.getLogger(__name__)

# Discord's reaction bucket allows about one request per 0.25 s per channel: keep clear of it.
REACTION_GAP_S = 0.3
ROOM_RETRY_S = 0.05  # how soon to look again when the global window has no room
SETTLE_S = 30.0  # the longest a finished turn waits for its last reaction


class ReactionLane:
    """One per bot: reactions of a channel go one at a time and spaced for their bucket, and
    only when the global window has room to spare (like the typing indicator), so they never
    take a place a reply's first part or final text needs. A channel where the bot may not add
    reactions gets none, and one log line."""

    def __init__(self, budget: WriteScheduler) -> None:
        self._budget = budget
        self._locks: dict[int, asyncio.Lock] = {}
        self._last: dict[int, float] = {}
        self._refused: set[int] = set()

    def allowed(self, channel: Any) -> bool:
        channel_id = channel.id
        if channel_id in self._refused:
            return False
        me = getattr(getattr(channel, "guild", None), "me", None)
        if me is not None:
            with contextlib.suppress(Exception):  # a thread whose parent is not cached
                can = channel.permissions_for(me)
                # Discord refuses a reaction from a bot that cannot read the history (50013).
                missing = [
                    name
                    for name, has in (
                        ("Add Reactions", can.add_reactions),
                        ("Read Message History", can.read_message_history),
                    )
                    if not has
                ]
                if missing:
                    self._refuse(channel_id, " and ".join(missing))
                    return False
        return True

    def _refuse(self, channel_id: int, missing: str = "Add Reactions") -> None:
        self._refused.add(channel_id)
        log.warning(
            "no status reactions in channel %s: the bot lacks the %s permission there",
            channel_id,
            missing,
        )

    async def send(self, channel: Any, request: Callable[[], Awaitable[Any]]) -> bool:
        """Make one reaction request when it fits; False if it was not made or refused."""
        if not self.allowed(channel):
            return False
        lock = self._locks.setdefault(channel.id, asyncio.Lock())
        async with lock:
            wait = self._last.get(channel.id, 0.0) + REACTION_GAP_S - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            while True:  # counted in the global window once it fits
                if self._budget.may_spare():
                    break
                await asyncio.sleep(ROOM_RETRY_S)
            try:
                await request()
                return True
            except discord.Forbidden:
                self._refuse(channel.id)
            except Exception as exc:
                log.debug("a status reaction failed: %s", describe(exc))
            finally:
                self._last[channel.id] = time.monotonic()
        return False


class StatusReactions:
    """One turn's reaction. `set(state)` says what it should show; a worker makes it so, removing
    the previous one first, and skips states that were overtaken while it waited."""

    def __init__(
        self,
        message: discord.Message,
        emojis: ReactionsConfig,
        lane: ReactionLane,
        me: Any,
        deleted: Container[int] = (),
    ) -> None:
        self._message = message
        self._deleted = deleted  # the gateway's MESSAGE_DELETEs: no reaction on a message gone
        self._me = me
        self._emojis = emojis
        self._lane = lane
        self._want: str | None = None
        self._shown: str | None = None
        self._final = False
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    def set(self, state: str) -> None:
        emoji = getattr(self._emojis, state)
        if emoji is None or self._final:
            return  # a state set to null is skipped; nothing follows the final one
        self._final = state in ("done", "failed", "stopped")
        self._want = emoji
        self._wake.set()
        if self._worker is None:
            self._worker = asyncio.create_task(self._work())

    def see(self, event: ev.TurnEvent) -> None:
        match event:
            case ev.ToolCallStarted() | ev.ElicitationResolved():
                self.set("tool")
            case ev.ApprovalRequested() | ev.ElicitationRequested():
                self.set("approval")
            case ev.ToolCallFinished() | ev.ApprovalResolved():
                self.set("working")
            case ev.TurnCompleted(stopped_by=None):
                self.set("done")
            case ev.TurnCompleted():
                self.set("stopped")
            case ev.TurnFailed():
                self.set("failed")

    async def finish(self) -> None:
        """Wait (bounded) until the last state shows, then stop the worker."""
        if self._worker is None:
            return
        self._final = True  # e.g. a shutdown cut the turn: what shows now stays
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._worker), SETTLE_S)
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker

    async def _work(self) -> None:
        channel = self._message.channel
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._want != self._shown:
                if self._message.id in self._deleted:
                    return
                shown, want = self._shown, self._want
                if shown is not None:
                    # Off first: at no moment are two of the bot's reactions on the message.
                    remove = partial(self._message.remove_reaction, shown, self._me)
                    if not await self._lane.send(channel, remove):
                        return
                    self._shown = None
                    continue  # the wanted state may have moved on meanwhile
                if want is not None:
                    if not await self._lane.send(
                        channel, partial(self._message.add_reaction, want)
                    ):
                        return
                    self._shown = want
            if self._final:
                return  # the last state shows
