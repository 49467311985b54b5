"""After a start, and after a gateway session that had to begin afresh: mentions of the bot (and
replies to it) posted while no session was open, answered once."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import discord

from bot.discord import handlers
from bot.discord.streaming.retry import describe
from bot.discord.streaming.write_scheduler import WriteScheduler

if TYPE_CHECKING:
    from bot.discord.host import BotHost

log = logging.getLogger(__name__)

OFFLINE_LINE = "asked while I was offline"  # shown small: -# asked while I was offline
MAX_ANSWERS = 20  # per catch-up, in all
MAX_READ = 100  # messages read per channel: one request
# Nobody waits on a catch-up live: its reads wait for room as long as this, behind the writes
# of answers streaming now, before a channel is left out.
READ_WAIT_S = 60.0


async def catch_up(bot: BotHost, catch_up_s: float) -> None:
    """In each channel where the bot handled a message in the last 7 days, the messages after the
    newest one it handled, no older than `catch_up_s`, that mention it or reply to it: the newest
    per user per channel, the newest MAX_ANSWERS in all, answered oldest first through the
    normal path (which notes each as handled, so no later catch-up answers it again)."""
    if catch_up_s <= 0:
        return
    client: Any = bot  # a discord.Client: the host Protocol names only what turns use
    me = client.user
    store = bot.services.store
    cutoff = discord.utils.utcnow() - timedelta(seconds=catch_up_s)
    newest: dict[tuple[int, int], discord.Message] = {}
    for channel_id, last_id in (await store.last_handled_by_channel()).items():
        after = max(last_id, discord.utils.time_snowflake(cutoff))
        try:
            read = await read_after(client, bot.budget, channel_id, after)
        except discord.HTTPException as exc:
            log.info("catch-up: could not read channel %s: %s", channel_id, describe(exc))
            continue
        if read is None:
            log.info(
                "catch-up: channel %s left out: Discord's global limit stayed busy", channel_id
            )
            continue
        for message in read:  # newest first
            if message.author.bot or message.created_at < cutoff:
                continue
            if not handlers.is_addressed(message, me, False, open_channel=False):
                continue  # open channels' chatter and others' talk are not questions
            newest.setdefault((channel_id, message.author.id), message)
    handled = await store.handled_among([m.id for m in newest.values()])
    missed = sorted((m for m in newest.values() if m.id not in handled), key=lambda m: m.id)
    missed = missed[-MAX_ANSWERS:]
    log.info(
        "catch-up: %d question(s) asked while the bot was away%s",
        len(missed),
        f" (message ids {', '.join(str(m.id) for m in missed)})" if missed else "",
    )
    for message in missed:
        bot.start_turn(handlers.on_message(bot, message, notice=OFFLINE_LINE))


async def read_after(
    client: discord.Client, budget: WriteScheduler, channel_id: int, after: int
) -> list[discord.Message] | None:
    """The newest MAX_READ messages of a channel after message id `after`, newest first. Each
    REST call (the channel, when not cached, and its history) waits for room in the global
    window as recent context's read does, and is counted there once; None when no room came."""
    channel: Any = client.get_channel(channel_id)
    if channel is None:
        if not await budget.room_for_read(READ_WAIT_S):
            return None
        channel = await client.fetch_channel(channel_id)
    if not await budget.room_for_read(READ_WAIT_S):
        return None
    history = channel.history(limit=MAX_READ, after=discord.Object(after), oldest_first=False)
    return [message async for message in history]
