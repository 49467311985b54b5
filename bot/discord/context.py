"""What a message brings besides its words: attached files and the message it replies to."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

import discord

from bot.core.attachments import (
    AttachmentLimits,
    Extracted,
    extract_off_loop,
    file_block,
    kind_of,
)

log = logging.getLogger(__name__)

QUOTE_MAX_CHARS = 4000  # the quoted message itself; its files follow the attachment caps


@dataclass
class MessageContext:
    """Text to add to the user's turn, image URLs for a vision model, and what was skipped."""

    blocks: list[str] = field(default_factory=list)
    image_urls: list[str] = field(default_factory=list)
    files: list[Extracted] = field(default_factory=list)

    def text_with(self, question: str) -> str:
        return "\n\n".join([*self.blocks, question] if question else self.blocks)


async def gather(
    message: discord.Message,
    *,
    me: discord.abc.User,
    limits: AttachmentLimits,
    vision: bool,
    shared_history: bool,
) -> MessageContext:
    context = MessageContext()
    quoted = await _replied_to(message)
    if quoted is not None and not _is_own_answer(quoted, message, me, shared_history):
        text = quoted.content[:QUOTE_MAX_CHARS]
        if len(quoted.content) > QUOTE_MAX_CHARS:
            text += " [...]"
        quote = f'<quoted from="{quoted.author.display_name}">\n{text}\n</quoted>'
        context.blocks.append(quote)
        await _attachments(quoted, context, limits, vision=False)
    await _attachments(message, context, limits, vision=vision)
    return context


async def _attachments(
    message: discord.Message, context: MessageContext, limits: AttachmentLimits, *, vision: bool
) -> None:
    for attachment in message.attachments:
        name = attachment.filename
        kind = kind_of(name, attachment.content_type)
        if kind == "image":
            if vision:
                context.image_urls.append(attachment.url)
            else:
                context.files.append(Extracted(name, skipped="this model is not set up for images"))
            continue
        if kind == "other":
            context.files.append(Extracted(name, skipped="this file type is not supported"))
            continue
        if attachment.size > limits.max_bytes:
            too_big = f"over the {limits.max_bytes // 1024} KB limit"
            context.files.append(Extracted(name, skipped=too_big))
            continue
        try:
            data = await attachment.read()
        except (discord.HTTPException, OSError) as exc:
            log.info("could not download attachment %s: %s", name, exc)
            context.files.append(Extracted(name, skipped="it could not be downloaded"))
            continue
        item = await extract_off_loop(name, kind, data, limits)
        context.files.append(item)
        if item.text is not None:
            context.blocks.append(file_block(item))


async def _replied_to(message: discord.Message) -> discord.Message | None:
    reference = message.reference
    if reference is None or reference.message_id is None:
        return None
    resolved = reference.resolved
    if isinstance(resolved, discord.Message):
        return resolved
    if isinstance(resolved, discord.DeletedReferencedMessage):
        return None
    with contextlib.suppress(discord.HTTPException):
        return await message.channel.fetch_message(reference.message_id)
    return None


def _is_own_answer(
    quoted: discord.Message, message: discord.Message, me: discord.abc.User, shared: bool
) -> bool:
    """A part of the bot's answer in this conversation is in the history already."""
    if quoted.author.id != me.id:
        return False
    if shared:
        return True  # channel/thread scope: every answer here is in the shared history
    asked = quoted.reference.resolved if quoted.reference else None
    asked_by = asked.author.id if isinstance(asked, discord.Message) else None
    # Unknown, this user's question, or an earlier part of a bot answer: treat it as known.
    return asked_by in (None, message.author.id, me.id)
