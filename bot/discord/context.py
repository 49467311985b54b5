"""What a message brings besides its words: files, embeds, a forward's snapshot, the message
it replies to."""

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
from bot.core.voice import Heard
from bot.discord.voice import Listening, hear

log = logging.getLogger(__name__)

QUOTE_MAX_CHARS = 4000  # the quoted message itself; its files follow the attachment caps
FORWARDED = "[forwarded message]"


@dataclass
class MessageContext:
    """Text to add to the user's turn, image URLs for a vision model, and what was skipped."""

    blocks: list[str] = field(default_factory=list)
    image_urls: list[str] = field(default_factory=list)
    files: list[Extracted] = field(default_factory=list)
    spoken: str | None = None  # a voice message's transcript: the question itself
    heard: list[Heard] = field(default_factory=list)  # transcriptions to pay for

    def text_with(self, question: str) -> str:
        return "\n\n".join([*self.blocks, question] if question else self.blocks)


async def gather(
    message: discord.Message,
    *,
    me: discord.abc.User,
    limits: AttachmentLimits,
    vision: bool,
    shared_history: bool,
    listening: Listening | None = None,
    voice: bool = False,
) -> MessageContext:
    """`voice`: the message is a voice message, whose transcript is its question (`spoken`);
    other audio (attached to a mention, or in the quoted message) is read as a file's text."""
    context = MessageContext()
    quoted = await _replied_to(message)
    if quoted is not None and not _is_own_answer(quoted, message, me, shared_history):
        text = _cut(message_text(quoted, limits.max_chars), QUOTE_MAX_CHARS)
        quote = f'<quoted from="{quoted.author.display_name}">\n{text}\n</quoted>'
        context.blocks.append(quote)
        await _attachments(_files_of(quoted), context, limits, vision=False, listening=listening)
    # The question's own words are the handler's; what it carries besides them comes first.
    carried = message_text(message, limits.max_chars, with_content=False)
    if carried:
        context.blocks.append(carried)
    await _attachments(
        _files_of(message), context, limits, vision=vision, listening=listening, voice=voice
    )
    return context


def is_forward(message: discord.Message) -> bool:
    reference = message.reference
    return reference is not None and reference.type is discord.MessageReferenceType.forward


def is_reply(message: discord.Message) -> bool:
    """A reply to a message (a forward also carries a reference, but answers nobody)."""
    return message.reference is not None and not is_forward(message)


def message_text(message: discord.Message, max_chars: int, *, with_content: bool = True) -> str:
    """What a reader of the message sees as text: its words and its embeds; a forward's words
    and embeds come from its snapshot, marked as forwarded. Embeds are cut at `max_chars`."""
    parts = [message.content] if with_content and message.content else []
    embeds = list(message.embeds)
    if is_forward(message) and message.message_snapshots:
        snapshot = message.message_snapshots[0]
        inner = [snapshot.content] if snapshot.content else []
        inner.extend(_embed_texts(snapshot.embeds, max_chars))
        parts.append(f"{FORWARDED} " + "\n".join(inner) if inner else FORWARDED)
    parts.extend(_embed_texts(embeds, max_chars))
    return "\n".join(parts)


def _embed_texts(embeds: list[discord.Embed], max_chars: int) -> list[str]:
    out = []
    for embed in embeds:
        lines = [
            embed.author.name,
            embed.title,
            embed.description,
            *(f"{field.name}: {field.value}" for field in embed.fields),
            embed.footer.text,
        ]
        text = "\n".join(line for line in lines if line)
        if text:
            out.append(f"[embed]\n{_cut(text, max_chars)}")
    return out


def _cut(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[:max_chars] + " [...]"


def _files_of(message: discord.Message) -> list[discord.Attachment]:
    if is_forward(message) and message.message_snapshots:
        return [*message.attachments, *message.message_snapshots[0].attachments]
    return list(message.attachments)


async def _attachments(
    attachments: list[discord.Attachment],
    context: MessageContext,
    limits: AttachmentLimits,
    *,
    vision: bool,
    listening: Listening | None = None,
    voice: bool = False,
) -> None:
    for attachment in attachments:
        name = attachment.filename
        kind = kind_of(name, attachment.content_type)
        if kind == "audio":
            item, heard = await hear(attachment, listening)
            context.heard.extend([heard] if heard is not None else [])
            context.files.append(item)
            if item.text is not None and voice and context.spoken is None:
                context.spoken = item.text
            elif item.text is not None:
                context.blocks.append(file_block(item))
            continue
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
    if reference is None or reference.message_id is None or is_forward(message):
        return None  # a forward's content is its snapshot, read as the message's own
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
