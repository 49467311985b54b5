"""Files that tools returned, attached to the reply within Discord's upload limits."""

from __future__ import annotations

import io
import logging

import discord

from bot.core.events import Attachment, Notice

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

    async def send_below(self, message: discord.Message) -> None:
        """Send the files in one message below the answer's last part (a new message, so the
        answer's own parts need no extra edit); a failure is logged, the text stays."""
        if not self._files:
            return
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


def upload_limit(source: discord.Message) -> int:
    guild = source.guild
    return (
        guild.filesize_limit if guild is not None else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
    )
