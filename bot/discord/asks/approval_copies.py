"""Approval prompts that reach the approvers: DM copies, role pings, one decision on every copy."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord
from discord.utils import escape_markdown

from bot.core.approvals import ApproverRule
from bot.core.events import ApprovalRequested
from bot.discord.asks.approval_text import with_line

if TYPE_CHECKING:
    from bot.config import DiscordConfig

log = logging.getLogger(__name__)

IN_CHANNEL = "in the channel"
IN_DM = "in a DM"


def role_pings(
    rule: ApproverRule, text: str, delivery: DiscordConfig | None
) -> tuple[str, list[discord.Object] | bool]:
    """The channel prompt's text and the roles it may ping: with `ping_roles`, every approver
    role, each mentioned (one the text names only by count, in a long list, is added)."""
    if delivery is None or not delivery.approvals.ping_roles or not rule.roles:
        return text, False
    missing = [f"<@&{role}>" for role in sorted(rule.roles) if f"<@&{role}>" not in text]
    if missing:
        text += "\n-# " + " ".join(missing)
    return text, [discord.Object(role) for role in sorted(rule.roles)]


def dm_recipients(rule: ApproverRule, delivery: DiscordConfig) -> list[int]:
    """The approver users of a server; with none listed, the bot's admins."""
    return sorted(rule.users) or list(dict.fromkeys(delivery.permissions.admin_ids))


def closing(
    view: Callable[[], discord.ui.View], line: str, attach: Callable[[], discord.File] | None
) -> Callable[[discord.Message | None], dict[str, Any]]:
    """What a prompt (any copy of it) becomes once decided: the outcome line, buttons off."""

    def edit(message: discord.Message | None) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if attach is not None:
            extra["attachments"] = [*(message.attachments if message else []), attach()]
        return dict(
            content=with_line(message.content if message else "", line),
            view=view(),
            allowed_mentions=discord.AllowedMentions.none(),
            **extra,
        )

    return edit


def where(interaction: discord.Interaction[Any]) -> str:
    return IN_DM if interaction.guild_id is None else IN_CHANNEL


def _header(prompt: discord.Message) -> str:
    guild = prompt.guild
    server = escape_markdown(guild.name) if guild is not None else "a server"
    return f"📨 From **{server}**, <#{prompt.channel.id}> ({prompt.jump_url}):\n"


class PromptCopies:
    """Every message showing one approval prompt (the channel's and the DMs), so that a decision
    made on any of them shows on all; and the guild of each DM copy, to judge its clicks."""

    def __init__(self) -> None:
        self._copies: dict[int, list[discord.Message]] = {}
        self._guilds: dict[int, int] = {}
        # How a prompt decided while its DMs were still going out is shown (send_dms clears it).
        self._closed: dict[int, Callable[[discord.Message], Any]] = {}
        self._sending: set[int] = set()

    def judged_in(self, approval_id: int, guild_id: int) -> None:
        """After a restart: a click on a DM copy of this prompt is judged as in its server."""
        self._guilds[approval_id] = guild_id

    async def decider(
        self, interaction: discord.Interaction[Any], approval_id: int
    ) -> discord.abc.User:
        """Who clicks, as the server knows them: a click in a DM is judged by the server's rule,
        which may count roles or the server's Administrator permission."""
        guild = interaction.client.get_guild(self._guilds.get(approval_id, 0))
        if interaction.guild_id is not None or guild is None:
            return interaction.user
        try:
            uid = interaction.user.id
            return guild.get_member(uid) or await guild.fetch_member(uid)
        except discord.HTTPException:
            return interaction.user

    async def send_dms(
        self,
        event: ApprovalRequested,
        prompt: discord.Message,
        text: str,
        approvers: list[int],
        view: Callable[[], discord.ui.View],
        file: Callable[[], discord.File] | None,
    ) -> None:
        """One DM per approver who can view the prompt's channel. Never raises: a DM that
        fails is logged, and the channel prompt works as always."""
        approval_id = event.approval_id
        self._copies[approval_id] = [prompt]
        guild = prompt.guild
        if guild is None:
            return
        self._guilds[approval_id] = guild.id
        self._sending.add(approval_id)
        try:
            await self._send_all(approval_id, guild, approvers, prompt, text, view, file)
        finally:
            self._sending.discard(approval_id)
            self._closed.pop(approval_id, None)

    async def _send_all(
        self,
        approval_id: int,
        guild: discord.Guild,
        approvers: list[int],
        prompt: discord.Message,
        text: str,
        view: Callable[[], discord.ui.View],
        file: Callable[[], discord.File] | None,
    ) -> None:
        for user_id in approvers:
            try:
                copy = await self._send_one(guild, user_id, prompt, text, view, file)
            except Exception as exc:  # noqa: BLE001 - one approver's DM must not stop the rest
                log.warning(
                    "approval %s: could not send its prompt to approver %s by DM: %s",
                    approval_id,
                    user_id,
                    exc,
                )
                continue
            if copy is None:
                continue
            if approval_id in self._copies:
                self._copies[approval_id].append(copy)
            else:  # decided while the DMs went out: this copy shows the outcome too
                await self._apply(approval_id, self._closed.get(approval_id), copy)

    async def _send_one(
        self,
        guild: discord.Guild,
        user_id: int,
        prompt: discord.Message,
        text: str,
        view: Callable[[], discord.ui.View],
        file: Callable[[], discord.File] | None,
    ) -> discord.Message | None:
        member = guild.get_member(user_id) or await guild.fetch_member(user_id)
        channel: Any = prompt.channel
        if not channel.permissions_for(member).view_channel:
            return None  # the prompt must not show a channel's words outside it
        return await member.send(
            _header(prompt) + text,
            view=view(),
            allowed_mentions=discord.AllowedMentions.none(),
            **({"file": file()} if file is not None else {}),  # type: ignore[call-overload]
        )

    async def show_everywhere(
        self,
        approval_id: int,
        edit: Callable[[discord.Message], Any],
        *,
        shown: int | None = None,
    ) -> None:
        """Apply one outcome to every copy but `shown` (the one a click already updated); the
        copies are forgotten, as the approval is closed."""
        self._guilds.pop(approval_id, None)
        copies = self._copies.pop(approval_id, None)
        if copies is None:
            return
        if approval_id in self._sending:
            self._closed[approval_id] = edit  # for the DMs still to come (see send_dms)
        for message in copies:
            if message.id != shown:
                await self._apply(approval_id, edit, message)

    @staticmethod
    async def _apply(
        approval_id: int, edit: Callable[[discord.Message], Any] | None, message: discord.Message
    ) -> None:
        if edit is None:
            return
        try:
            await edit(message)
        except discord.HTTPException as exc:
            log.warning("could not update a copy of approval %s: %s", approval_id, exc)
