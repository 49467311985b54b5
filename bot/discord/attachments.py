"""Files that tools returned, attached to the reply within Discord's upload limits."""

from __future__ import annotations

import io
import logging
from typing import Any

import discord

from bot.core.events import Attachment, Notice
from bot.discord.streaming.budget import Priority

log = logging.getLogger(__name__)

MAX_FILES = 10  # Discord's limit per message


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KiB"


class ReplyFiles:
    """Collects a turn's files; refuses what Discord would refuse, with a line saying why."""

    def __init__(self, limit_bytes: int) -> None:
        self._limit = limit_bytes  # per request, so for all files of the message together
        self._files: list[Attachment] = []

    @property
    def pending(self) -> bool:
        return bool(self._files)

    def add(self, attachments: tuple[Attachment, ...]) -> list[Notice]:
        """Keep what fits; return one notice per file that does not."""
        lines = []
        for file in attachments:
            used = sum(len(f.data) for f in self._files)
            if len(file.data) > self._limit:
                lines.append(
                    f"`{file.filename}` ({_size(len(file.data))}) is over Discord's upload "
                    f"limit ({_size(self._limit)}), so it is not attached."
                )
            elif used + len(file.data) > self._limit or len(self._files) >= MAX_FILES:
                lines.append(f"`{file.filename}` did not fit in this reply, so it is not attached.")
            else:
                self._files.append(file)
        return [Notice(text=line) for line in lines]

    @classmethod
    def for_reply(cls, source: discord.Message) -> ReplyFiles:
        guild = source.guild
        return cls(guild.filesize_limit if guild else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES)

    async def send_below(self, segments: Any, pay: Any) -> None:
        """Send the files in one message below the answer's last part (a new message, so the
        answer's own parts need no extra edit), paid from the reply's write budget (`pay`,
        the renderer's). A failure is logged; the text stays."""
        last = segments[-1].messages or segments[0].messages
        if self._files and last:
            await pay(Priority.FINAL, lambda: self._post_below(last[-1]))

    async def _post_below(self, message: discord.Message) -> None:
        files = [discord.File(io.BytesIO(f.data), filename=f.filename) for f in self._files]
        try:
            await message.reply(
                "-# 📎 from the tools",
                files=files,
                mention_author=False,
                allowed_mentions=discord.AllowedMentions.none(),
            )
            self._files.clear()
        except (discord.HTTPException, OSError, TimeoutError) as exc:
            log.warning("could not send %d tool file(s) with the reply: %s", len(files), exc)
