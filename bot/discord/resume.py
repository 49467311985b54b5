"""At start-up: approvals the last process left open resume their turns, or expire."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import discord

from bot.core.decisions import grant_name
from bot.core.resume import Resumable, calls_of, decode
from bot.core.state import TurnRequest
from bot.discord.channel_prompt import effective_prompt
from bot.discord.streaming.retry import describe
from bot.discord.streaming.transcript import STREAMING_INDICATOR

if TYPE_CHECKING:
    from bot.discord.asks.approvals import DiscordApprovals
    from bot.discord.host import BotHost

log = logging.getLogger(__name__)

# How far back a prompt whose id was not stored yet is looked for (one REST page).
PROMPT_SEARCH_LIMIT = 50
# A turn cut after its approval was decided goes on after a restart only this soon after the
# decision (as a question cut by a shutdown is answered again within an hour); later it ends
# as it stood.
DECIDED_MAX_AGE_S = 3600


@dataclass(frozen=True)
class ResumedTurn:
    """A turn to continue below its approval prompt (handlers.answer runs it)."""

    prompt: discord.Message
    request: TurnRequest
    resumable: Resumable


async def resume_or_expire(
    bot: BotHost, approvals: DiscordApprovals
) -> tuple[list[ResumedTurn], int]:
    """Each approval still pending, and each whose turn a restart cut after its decision: the
    turn continues below its prompt (a pending one's buttons decide, within what is left of
    `mcp.approval_timeout_s` counted from when it was asked); an approval whose time is up, or
    whose turn cannot continue, expires as before. Returns the turns and how many expired."""
    turns: list[ResumedTurn] = []
    expired = 0
    for record, stored in await bot.services.store.unfinished_approvals():
        try:
            turn = await _resume_one(bot, approvals, record, decode(stored))
        except Exception:
            # Never a start-up that fails on every try: this turn is not resumed.
            log.exception("approval %s: its turn could not be resumed", record.id)
            turn = None
        if turn is not None:
            turns.append(turn)
            continue
        if record.status == "pending" and await _expire(bot, approvals, record):
            expired += 1
        if stored is not None:
            await bot.services.store.drop_resume(record.id)
    return turns, expired


async def _resume_one(
    bot: BotHost, approvals: DiscordApprovals, record: Any, position: dict[str, Any] | None
) -> ResumedTurn | None:
    """The turn of one approval to continue, or None when it cannot or may not continue."""
    services = bot.services
    backend = services.conversations.backend.name
    if position is not None and position["backend"] != backend:
        log.info(
            "approval %s: its turn ran on the %s backend, not %s; not resumed",
            record.id,
            position["backend"],
            backend,
        )
        return None
    pending = record.status == "pending"
    since = (record.decided_at or record.created_at) if not pending else record.created_at
    age_s = (datetime.now(UTC) - since).total_seconds()
    left_s = services.settings.mcp.approval_timeout_s - age_s
    if position is None or (left_s <= 0 if pending else age_s > DECIDED_MAX_AGE_S):
        return None
    prompt = await _prompt_message(bot, record)
    if prompt is None:
        return None
    resumable = Resumable(
        approval_id=record.id,
        status=record.status,
        position=position,
        edited_arguments=record.edited_arguments,
    )
    if pending and not resumable.started:
        # Registered before the gateway connects: no click can come before it.
        schema, grant = _what_is_asked(services, record, position)
        services.broker.adopt(record.id, schema=schema, grant=grant, timeout_s=left_s)
        approvals.adopt_prompt(record.id, prompt, record.key.guild_id)
    await _tidy_cut_replies(bot, prompt)
    request = await _request(bot, record, resumable, prompt)
    log.info(
        "approval %s (%s): its turn resumed below its prompt in channel %s",
        record.id,
        record.status,
        prompt.channel.id,
    )
    return ResumedTurn(prompt, request, resumable)


async def _expire(bot: BotHost, approvals: DiscordApprovals, record: Any) -> bool:
    """A pending approval that will not resume: marked expired, on its prompt too (found by
    its buttons when its id was not stored in time)."""
    if not record.message_id:
        prompt = await _prompt_message(bot, record)
        if prompt is not None:
            record = replace(record, channel_id=prompt.channel.id, message_id=prompt.id)
    return await approvals.expire(bot, record)  # type: ignore[arg-type]


def _what_is_asked(
    services: Any, record: Any, position: dict[str, Any]
) -> tuple[dict[str, Any] | None, str]:
    """The tool's schema (for "Edit & approve") and what "Always allow" grants."""
    calls = calls_of(position)
    spec = services.tools.find(calls[0][1]) if calls and services.tools is not None else None
    schema = spec.input_schema if spec is not None else None
    grant_as = getattr(spec, "grant_as", None) if spec is not None else None
    return schema, grant_name(record.server, grant_as or record.tool)


async def _prompt_message(bot: BotHost, record: Any) -> discord.Message | None:
    """The prompt, which the resumed answer replies to; None when it is gone. A prompt posted
    just before the restart may not have had its id stored yet: it is looked for among the
    conversation channel's newest messages by its buttons."""
    client: Any = bot
    channel_id = record.channel_id or record.key.channel_id
    try:
        channel = client.get_channel(channel_id) or await client.fetch_channel(channel_id)
        if record.message_id:
            return await channel.fetch_message(record.message_id)  # type: ignore[no-any-return]
        wanted = f"mcpa:{record.id}:"
        async for message in channel.history(limit=PROMPT_SEARCH_LIMIT):
            if message.author.id == client.user.id and _has_button(message, wanted):
                await bot.services.store.attach_approval_message(
                    record.id, message.channel.id, message.id
                )
                return message  # type: ignore[no-any-return]
    except discord.HTTPException as exc:
        log.warning("approval %s: its prompt cannot be read (%s)", record.id, describe(exc))
    return None


async def _tidy_cut_replies(bot: BotHost, prompt: discord.Message) -> None:
    """Reply parts the restart cut while they showed the streaming indicator (and maybe a Stop
    button): the one the prompt answers to, and those already written below it. They are
    finished as they stand: the answer goes on in a new reply below the prompt."""
    me = bot.user
    if me is None:
        return
    try:
        cut: list[discord.Message] = []
        reference = prompt.reference
        if reference is not None and reference.message_id is not None:
            cut.append(await prompt.channel.fetch_message(reference.message_id))
        chain = {prompt.id}
        async for message in prompt.channel.history(after=prompt, limit=PROMPT_SEARCH_LIMIT):
            replied = message.reference.message_id if message.reference else None
            if message.author.id == me.id and replied in chain:
                chain.add(message.id)
                cut.append(message)
        for message in cut:
            if message.author.id == me.id and message.content.endswith(STREAMING_INDICATOR):
                await message.edit(
                    content=message.content.removesuffix(STREAMING_INDICATOR),
                    view=None,
                    allowed_mentions=discord.AllowedMentions.none(),
                )
    except discord.HTTPException as exc:
        log.info("replies cut around approval prompt %s stay as they were: %s", prompt.id, exc)


def _has_button(message: discord.Message, prefix: str) -> bool:
    return any(
        str(getattr(child, "custom_id", "") or "").startswith(prefix)
        for row in message.components
        for child in getattr(row, "children", ())
    )


async def _request(
    bot: BotHost, record: Any, resumable: Resumable, prompt: discord.Message
) -> TurnRequest:
    settings = bot.services.settings
    instructions = await effective_prompt(bot.services.store, settings, prompt.channel)
    return TurnRequest(
        key=record.key,
        user_id=record.requester_id,
        user_name=resumable.user_name,
        text="",  # the question is in the stored position
        system_prompt=instructions.text,
        model=resumable.model,
    )
