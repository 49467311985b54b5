"""Threads the bot created are conversations: follow-ups there need no mention
(discord.threads_without_mention), and the title may come from the model (discord.thread_title)."""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import discord

from bot.config import DiscordConfig

log = logging.getLogger(__name__)

KNOWN_ASKERS = 1000  # threads whose asker is remembered (one lookup each otherwise)


class BotThreads:
    """Knows who asked the question each of the bot's threads was started for."""

    def __init__(self) -> None:
        self._askers: OrderedDict[int, int] = OrderedDict()

    async def follows_up(
        self, message: discord.Message, me: discord.abc.User, config: DiscordConfig
    ) -> bool:
        """A message in a thread the bot started for a question, from that question's asker
        (with scope thread: from anyone there), when such follow-ups need no mention."""
        thread = message.channel
        if not (config.reply_in_thread and config.threads_without_mention):
            return False
        if not isinstance(thread, discord.Thread) or thread.owner_id != me.id:
            return False
        if config.scope == "thread":
            return True
        return await self._asker(thread) == message.author.id

    def started(self, thread: discord.Thread, asker_id: int) -> None:
        """The bot just started `thread` for `asker_id`'s question."""
        self._remember(thread.id, asker_id)

    async def _asker(self, thread: discord.Thread) -> int | None:
        if thread.id in self._askers:
            self._askers.move_to_end(thread.id)
            return self._askers[thread.id]
        # A thread started from a message takes that message's id (as on Discord).
        starter = thread.starter_message
        if starter is None and thread.parent_id:
            parent = thread.parent or thread.guild.get_channel(thread.parent_id)
            if isinstance(parent, discord.TextChannel):
                with contextlib.suppress(discord.HTTPException):
                    starter = await parent.fetch_message(thread.id)
        if starter is None:
            return None  # gone or unreadable: only a mention is answered (asked again next time)
        self._remember(thread.id, starter.author.id)
        return starter.author.id

    def _remember(self, thread_id: int, asker_id: int) -> None:
        self._askers[thread_id] = asker_id
        self._askers.move_to_end(thread_id)
        while len(self._askers) > KNOWN_ASKERS:
            self._askers.popitem(last=False)


TITLE_PROMPT = (
    "Write a title of 3 to 6 words for a Discord thread that starts with the user's question. "
    "Answer with the title only: no quotes, no punctuation at the end."
)
TITLE_MAX_TOKENS = 30
QUESTION_MAX_CHARS = 1000


async def retitle(
    thread: discord.Thread, question: str, short_answer: Callable[[str, str, int], Awaitable[str]]
) -> None:
    """discord.thread_title: generated. One small request for a title, then one rename; any
    failure leaves the first words the thread was created with."""
    try:
        raw = await short_answer(TITLE_PROMPT, question[:QUESTION_MAX_CHARS], TITLE_MAX_TOKENS)
    except Exception as exc:  # the model's failures are many; the first words stay
        log.info("no title for thread %s: %s", thread.id, exc)
        return
    title = _clean_title(raw)
    if title is None:
        log.info("no title for thread %s: the model answered %r", thread.id, raw[:100])
        return
    try:
        await thread.edit(name=title)
    except discord.HTTPException as exc:
        log.info("could not rename thread %s: %s", thread.id, exc)


def _clean_title(raw: str) -> str | None:
    lines = [line for line in raw.strip().splitlines() if line.strip()]
    if not lines:
        return None
    title = lines[0].strip().strip("\"'`*#").strip().rstrip(".")
    if not title or len(title.split()) > 10:
        return None  # not a title: the model answered the question instead
    return title[:90]
