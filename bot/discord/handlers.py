"""From a Discord message to a turn: is it for us, is it allowed, and what does it ask."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from typing import TYPE_CHECKING, Any

import discord

from bot.config import ChannelConfig
from bot.core.attachments import AttachmentLimits, skip_line
from bot.core.conversations import conversation_key
from bot.core.events import Notice
from bot.core.resume import Resumable
from bot.core.state import TurnRequest
from bot.core.voice import HEARD_ICON, VOICE_OFF, AudioCaps, heard_text
from bot.discord.channel_prompt import effective_prompt
from bot.discord.commands.stop import stop_view
from bot.discord.context import gather as gather_context
from bot.discord.context import is_reply
from bot.discord.streaming.asking import QuestionNotAsked
from bot.discord.streaming.mentions import NO_MENTIONS
from bot.discord.streaming.reactions import StatusReactions
from bot.discord.streaming.render import StreamRenderer
from bot.discord.streaming.retry import describe, with_retries
from bot.discord.threads import retitle
from bot.discord.voice import Listening, is_voice_message, keep_costs

if TYPE_CHECKING:
    from bot.discord.host import BotHost

log = logging.getLogger(__name__)

EMPTY_MENTION_HINT = "Mention me with a question, for example: `@{name} what can you do?`"


def is_addressed(
    message: discord.Message, me: discord.ClientUser, allow_dms: bool, *, open_channel: bool
) -> bool:
    """A mention of the bot or its managed role, a reply to the bot, (if allowed) a DM, or, in an
    open channel (respond_without_mention), any message not meant for someone else."""
    if message.guild is None:
        return allow_dms
    if me in message.mentions:
        return True
    own_role = message.guild.self_role
    if own_role is not None and own_role in message.role_mentions:
        return True
    if replies_to_me(message, me):
        return True
    if not open_channel:
        return False
    meant_for_others = (
        any(user.id != me.id for user in message.mentions)
        or bool(message.role_mentions)
        or message.mention_everyone
        or is_reply(message)  # to someone else (a reply to the bot returned above); a forward
        # is no reply: it is answered where a plain message would be
    )
    return not meant_for_others


def replies_to_me(message: discord.Message, me: discord.ClientUser) -> bool:
    reference = message.reference
    resolved = reference.resolved if reference else None
    return isinstance(resolved, discord.Message) and resolved.author.id == me.id


async def said_to_me(bot: BotHost, message: discord.Message, me: discord.ClientUser) -> bool:
    """A DM, a reply to the bot or a follow-up in its thread (under an open channel too): where
    no answer at all would puzzle the sender."""
    if message.guild is None or replies_to_me(message, me):
        return True
    return await bot.threads.follows_up(message, me, bot.services.settings.discord)


def strip_mentions(content: str, me: discord.ClientUser, own_role_id: int | None) -> str:
    patterns = [rf"<@!?{me.id}>"]
    if own_role_id:
        patterns.append(rf"<@&{own_role_id}>")
    return re.sub("|".join(patterns), "", content).strip()


def channel_settings(settings: Any, channel: Any) -> ChannelConfig:
    """discord.channels' entry for this channel; a thread follows its parent unless listed."""
    channels = settings.discord.channels
    entry = channels.get(channel.id) or channels.get(getattr(channel, "parent_id", None) or 0)
    return entry or ChannelConfig()


async def on_message(
    bot: BotHost,
    message: discord.Message,
    *,
    notice: str | None = None,
    cut_reply: tuple[int, ...] | None = None,
) -> None:
    """`notice`: a small line shown above the answer, as is (e.g. that it was asked while the bot
    was down); `cut_reply`: a question handled before, cut by a shutdown, answered once more
    into the parts of the reply the cut left."""
    me = bot.user
    if me is None or message.author.bot or message.author.id == me.id:
        return
    settings = bot.services.settings
    here = channel_settings(settings, message.channel)
    open_here = here.respond_without_mention
    if not is_addressed(message, me, settings.discord.allow_dms, open_channel=open_here):
        # A follow-up in the bot's own thread is addressed as in an open channel.
        open_here = await bot.threads.follows_up(message, me, settings.discord)
        if not open_here or not is_addressed(message, me, False, open_channel=True):
            return
    if not bot.accepting:
        return  # shutting down: a half-started turn would only be cancelled
    try:  # taken as a question (answered, refused or over a limit): no catch-up answers it
        fresh = await bot.services.store.note_handled(message.channel.id, message.id)
    except Exception:
        log.exception("could not note message %s as handled", message.id)
        fresh = True
    if not fresh and cut_reply is None:
        return  # taken already (a catch-up and the live event, or two catch-ups, met on it)
    if not bot.access.allows(message.author, message.channel):
        log.info("ignoring %s in %s: not allowed by config", message.author.id, message.channel.id)
        return
    voice = is_voice_message(message)
    if voice and not settings.llm.transcription_model:
        # Said to the bot (a DM, a reply to it, its thread): say why no answer comes. In an open
        # channel a voice message may be meant for the people there: no line.
        if await said_to_me(bot, message, me):
            await reply_plain(message, VOICE_OFF)
        return
    own_role = message.guild.self_role if message.guild else None
    text = strip_mentions(message.content, me, own_role.id if own_role else None)
    if not text and not message.attachments and message.reference is None:
        if open_here and me not in message.mentions:
            return  # a sticker or an empty message in an open channel is not a question
        await reply_plain(message, EMPTY_MENTION_HINT.format(name=me.display_name))
        return
    missing = missing_permission(message, settings.discord.reply_in_thread)
    if missing:
        # Nobody would see an answer: spend no tokens and hold no conversation.
        log.warning(
            "not answering in channel %s (#%s): the bot lacks the %s permission there",
            message.channel.id,
            getattr(message.channel, "name", "?"),
            missing,
        )
        return
    # Reserved before any await, so a burst of messages cannot all pass the limits.
    reservation = bot.services.limits.reserve(message.author.id)
    if isinstance(reservation, str):
        await reply_plain(message, reservation)
        return
    with reservation:
        refusal = await bot.services.limits.admit(message.author.id, reservation)
        if refusal:
            await reply_plain(message, refusal)
            return
        # Files are downloaded only for a question that passed the access lists and limits.
        attached = settings.discord.attachments
        context = await gather_context(
            message,
            me=me,
            limits=AttachmentLimits(max_bytes=attached.max_bytes, max_chars=attached.max_chars),
            vision=settings.llm.vision,
            shared_history=settings.discord.scope != "user",
            listening=listening(bot, settings),
            voice=voice,
        )
        if context.heard:
            await keep_costs(
                bot.services.store,
                key_of(settings, message, message.channel),
                message.author.id,
                context.heard,
            )
        text = context.spoken or text
        skipped = skip_line(context.files)
        if not text and not context.blocks and not context.image_urls:
            await reply_plain(message, skipped or EMPTY_MENTION_HINT.format(name=me.display_name))
            return
        recent = await bot.recent.block(
            message,
            me=me,
            config=settings.discord.recent_context,
            shared_history=settings.discord.scope != "user",
            max_chars=attached.max_chars,
        )
        channel: Any = message.channel
        target: discord.Thread | None = None
        if settings.discord.reply_in_thread and isinstance(channel, discord.TextChannel):
            channel = target = await message.create_thread(name=(text or "Question")[:90])
            bot.threads.started(target, message.author.id)
        instructions = await effective_prompt(bot.services.store, settings, channel)
        request = TurnRequest(
            key=key_of(settings, message, channel),
            user_id=message.author.id,
            user_name=message.author.display_name,
            text=context.text_with(text),
            image_urls=tuple(context.image_urls),
            is_admin=bot.access.is_admin(message.author),
            system_prompt=instructions.text,
            model=here.model,
            context=recent,
        )
        heard = heard_text(context.spoken) if context.spoken else None
        await answer(
            bot,
            message,
            request,
            target,
            notice=skipped,
            heard=heard,
            aside=notice,
            replacing=cut_reply or (),
        )
        short_answer = bot.services.short_answer
        if target is not None and settings.discord.thread_title == "generated" and short_answer:
            # Its own task: the asker's limits are not held while the title is written.
            bot.start_turn(retitle(target, text or request.text, short_answer))


def key_of(settings: Any, message: discord.Message, channel: Any) -> Any:
    """The conversation a question in `channel` (its own, or the bot's new thread) belongs to."""
    return conversation_key(
        settings.discord.scope,
        guild_id=message.guild.id if message.guild else None,
        channel_id=channel.id,
        user_id=message.author.id,
        in_thread=isinstance(channel, discord.Thread),
    )


def listening(bot: BotHost, settings: Any) -> Listening:
    """Audio is heard while a transcription model is set (a reload may set or unset it)."""
    on = bool(settings.llm.transcription_model)
    attached = settings.discord.attachments
    return Listening(
        transcribe=bot.services.transcribe if on else None,
        llm=settings.llm,
        caps=AudioCaps(max_s=attached.max_audio_s, max_bytes=attached.max_audio_bytes),
    )


def missing_permission(message: discord.Message, reply_in_thread: bool) -> str | None:
    """The permission the bot lacks to answer this message where it would answer, if any."""
    channel = message.channel
    if message.guild is None or isinstance(channel, discord.DMChannel | discord.GroupChannel):
        return None
    needed: tuple[str, ...] = ("send_messages",)
    if isinstance(channel, discord.Thread):
        needed = ("send_messages_in_threads",)
    elif reply_in_thread and isinstance(channel, discord.TextChannel):
        needed = ("create_public_threads", "send_messages_in_threads")
    try:
        allowed = channel.permissions_for(message.guild.me)
    except discord.ClientException:
        return None  # a thread whose parent is not cached: let Discord decide
    for name in needed:
        if not getattr(allowed, name):
            return name.replace("_", " ").title()
    return None


async def reply_plain(message: discord.Message, text: str) -> None:
    """A one-line answer; sent even if the question was deleted meanwhile."""
    nonce = secrets.randbelow(10**18)  # a retry after a lost answer does not post it twice
    try:
        await with_retries(
            "sending a one-line answer",
            lambda: message.channel.send(
                text,
                reference=message.to_reference(fail_if_not_exists=False),
                mention_author=False,
                allowed_mentions=NO_MENTIONS,
                nonce=nonce,
            ),
        )
    except Exception as exc:
        log.warning("could not answer message %s: %s", message.id, exc)


async def answer(
    bot: BotHost,
    message: discord.Message,
    request: TurnRequest,
    target: discord.Thread | None,
    *,
    notice: str | None = None,
    heard: str | None = None,
    aside: str | None = None,
    replacing: tuple[int, ...] = (),
    resumed: Resumable | None = None,
) -> None:
    """`heard`: what a voice message said, shown first in a small line; `aside`: a small line
    without an icon, first of all. `resumed`: a turn a restart cut, continued below its
    approval prompt (`message`)."""
    services = bot.services
    renderer = StreamRenderer(
        message,
        edit_interval_s=services.settings.discord.edit_interval_s,
        approvals=bot.approvals,
        budget=bot.budget,
        elicitations=bot.elicitation_ui,
        deleted=bot.deleted,
        channel=target,
        reasoning=services.settings.llm.reasoning,
        stop_view=(lambda: stop_view(request.turn_id))
        if services.settings.discord.stop_button
        else None,
        usage_footer=services.settings.discord.usage_footer,
        replacing=replacing,
    )
    reactions = status_reactions(bot, message)
    if reactions is not None and services.conversations.busy(request.key):
        reactions.set("queued")

    def on_start() -> None:
        renderer.start()
        if reactions is not None:
            reactions.set("working")

    # aclosing: if Discord fails mid-turn, the turn (and its conversation lock) ends now.
    # The renderer types and paces as streaming only once the conversation is ours (on_start).
    events = contextlib.aclosing(
        services.conversations.run_turn(request, on_start=on_start, resumed=resumed)
    )
    try:
        async with renderer, events as stream:
            if aside:
                await renderer.handle(Notice(text=aside, icon=""))
            if heard:
                await renderer.handle(Notice(text=heard, icon=HEARD_ICON))
            if notice:
                await renderer.handle(Notice(text=notice))
            async for event in stream:
                if reactions is not None:
                    reactions.see(event)
                await renderer.handle(event)
    except QuestionNotAsked:
        pass  # the reply says so, the log has its line: the turn ends here
    except asyncio.CancelledError:
        if (
            not bot.accepting
            and not request.cut.acted
            and message.author.id != getattr(bot.user, "id", None)
        ):
            # Cut by a shutdown before any tool ran or approval was asked: the next start
            # answers it again, once. Shielded: the cancel must not cut the note itself.
            await asyncio.shield(remember_cut(bot, message, renderer.part_ids()))
        raise
    finally:
        if reactions is not None:
            # The last reaction waits its turn at the lowest priority; the answer is done, so
            # the asker's turn is over now (a /forget or a next question need not wait for it).
            bot.start_turn(reactions.finish())


async def remember_cut(bot: BotHost, message: discord.Message, parts: tuple[int, ...]) -> None:
    try:
        await bot.services.store.remember_cut_question(message.channel.id, message.id, parts)
    except Exception:
        log.exception("could not note question %s to answer after the restart", message.id)


async def answer_cut_questions(bot: BotHost, max_age_s: float) -> None:
    """At start-up: the questions the last shutdown cut, answered again through the normal path."""
    questions = await bot.services.store.take_cut_questions(max_age_s)
    log.info("%d question(s) cut by the last shutdown to answer again", len(questions))
    for channel_id, message_id, parts in questions:
        try:
            client: Any = bot  # a discord.Client: the host Protocol names only what turns use
            channel = client.get_channel(channel_id) or await client.fetch_channel(channel_id)
            message = await channel.fetch_message(message_id)
        except discord.HTTPException as exc:
            log.warning("could not read question %s again: %s", message_id, describe(exc))
            continue
        bot.start_turn(on_message(bot, message, cut_reply=parts))


def status_reactions(bot: BotHost, message: discord.Message) -> StatusReactions | None:
    """The asker's message shows the turn's state; a /prompt turn has no such message."""
    emojis = bot.services.settings.discord.reactions
    me = bot.user
    if emojis is False or me is None or message.author.id == me.id:
        return None
    return StatusReactions(message, emojis, bot.reactions, me, bot.deleted)
