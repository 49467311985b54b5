"""The channel's last messages before a question (discord.recent_context), as one block the model
reads as context: fetched once per turn, sent with that turn only, never stored."""

from __future__ import annotations

import logging
from datetime import timedelta

import discord

from bot.config.discord_sections import RecentContextConfig
from bot.discord.context import message_text
from bot.discord.streaming.write_scheduler import WriteScheduler

log = logging.getLogger(__name__)

LINE_MAX_CHARS = 1000  # one chatty message must not crowd out the others
READ_WAIT_S = 1.0  # the longest a question waits for room for its history read
HEADER = (
    "Recent messages in this channel before the question, oldest first. They are context "
    "only: they were not addressed to you, and the question is the user's message."
)


class RecentContext:
    """Fetches and formats the block; remembers the channels already logged as unreadable."""

    def __init__(self, budget: WriteScheduler) -> None:
        self._budget = budget
        self._told: set[int] = set()
        self._skipped = 0

    async def block(
        self,
        message: discord.Message,
        *,
        me: discord.abc.User,
        config: RecentContextConfig,
        shared_history: bool,
        max_chars: int,
    ) -> str | None:
        if config.messages <= 0 or not self._may_read(message):
            return None
        # Answers and their parts can sit between the messages: fetch a few more than wanted,
        # still one request (at most 100 per request).
        limit = min(100, config.messages * 3)
        # The read counts against the bot's 50 requests/s: it waits for room like typing does,
        # behind the first and final texts of answers already streaming. In a burst that keeps
        # the window full, the question is answered without the block rather than seconds late.
        if not await self._budget.room_for_read(READ_WAIT_S):
            self._skipped += 1
            if self._skipped == 1 or self._skipped % 100 == 0:
                log.info(
                    "recent context left out of %d question(s): Discord's global limit was busy",
                    self._skipped,
                )
            return None
        try:
            fetched = [m async for m in message.channel.history(limit=limit, before=message)]
        except discord.HTTPException as exc:
            log.info("recent context for channel %s: %s", message.channel.id, exc)
            return None
        # Questions the bot answered here (its reply points at them) are in a history already:
        # this conversation's when shared or asked by this user, else someone else's.
        answered = {m.reference.message_id for m in fetched if m.author.id == me.id and m.reference}
        since = message.created_at - timedelta(seconds=config.max_age_s)
        picked: list[str] = []
        for past in fetched:  # newest first
            if past.created_at < since or len(picked) == config.messages:
                break
            if past.author.id == me.id:
                continue
            if past.id in answered and (shared_history or past.author.id == message.author.id):
                continue
            text = _text_of(past, max_chars)
            if text:
                picked.append(f'<message from="{past.author.display_name}">\n{text}\n</message>')
        if not picked:
            return None
        body = "\n".join(reversed(picked))
        return f"{HEADER}\n<recent_messages>\n{body}\n</recent_messages>"

    def _may_read(self, message: discord.Message) -> bool:
        channel = message.channel
        if message.guild is None or not isinstance(
            channel, discord.abc.GuildChannel | discord.Thread
        ):
            return True
        try:
            allowed = channel.permissions_for(message.guild.me).read_message_history
        except discord.ClientException:
            return True  # a thread whose parent is not cached: Discord decides
        if not allowed and channel.id not in self._told:
            self._told.add(channel.id)
            log.warning(
                "recent context is off in channel %s (#%s): the bot lacks the Read Message "
                "History permission there; questions are answered without it",
                channel.id,
                getattr(channel, "name", "?"),
            )
        return allowed


def _text_of(message: discord.Message, max_chars: int) -> str:
    """Mentions as names, embeds and forwards as text, files by name."""
    parts = [message.clean_content] if message.content else []
    carried = message_text(message, max_chars, with_content=False)
    if carried:
        parts.append(carried)
    parts.extend(f"[file: {a.filename}]" for a in message.attachments)
    text = "\n".join(parts).strip()
    return text if len(text) <= LINE_MAX_CHARS else text[:LINE_MAX_CHARS] + " [...]"
