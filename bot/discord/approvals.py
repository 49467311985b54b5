"""Approval buttons: persistent `mcpa:<id>:<action>` buttons wired to the ApprovalBroker."""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

import discord

from bot.core.approvals import Action, ApprovalBroker, ClickResult
from bot.core.events import ApprovalRequested, ApprovalResolved

if TYPE_CHECKING:
    from bot.discord.client import McpcordBot

log = logging.getLogger(__name__)

MAX_ARGUMENTS_CHARS = 1200  # keeps the prompt well under Discord's 2000 characters
_BUTTONS: tuple[tuple[Action, str, discord.ButtonStyle], ...] = (
    ("approve", "Approve", discord.ButtonStyle.success),
    ("deny", "Deny", discord.ButtonStyle.danger),
    ("always", "Always allow", discord.ButtonStyle.secondary),
)
_OUTCOME_LINES = {
    "approved": "✅ Approved by <@{user}>.",
    "always": "✅ Always allowed by <@{user}> for the rest of this conversation.",
    "denied": "❌ Denied by <@{user}>.",
    "timeout": "⌛ Nobody decided in time, so the tool was not run.",
    "expired": "⌛ Expired: the bot restarted before anyone decided. Ask again.",
}


def custom_id(approval_id: int, action: str) -> str:
    return f"mcpa:{approval_id}:{action}"


class ApprovalButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"mcpa:(?P<approval_id>[0-9]+):(?P<action>approve|deny|always)",
):
    """Rebuilt from its custom_id on every click, so it keeps working after a restart."""

    def __init__(self, approval_id: int, action: Action, *, disabled: bool = False) -> None:
        label, style = next((lab, sty) for act, lab, sty in _BUTTONS if act == action)
        super().__init__(
            discord.ui.Button(
                label=label,
                style=style,
                custom_id=custom_id(approval_id, action),
                disabled=disabled,
            )
        )
        self.approval_id = approval_id
        self.action: Action = action

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> ApprovalButton:
        action: Action = match["action"]  # type: ignore[assignment]
        return cls(int(match["approval_id"]), action)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot: McpcordBot = interaction.client
        result = await bot.services.broker.click(
            self.approval_id,
            user_id=interaction.user.id,
            is_admin=bot.access.is_admin(interaction.user),
            action=self.action,
        )
        await _answer_click(interaction, self.approval_id, result)


async def _answer_click(
    interaction: discord.Interaction[Any], approval_id: int, result: ClickResult
) -> None:
    match result.outcome:
        case "not_allowed":
            await interaction.response.send_message(
                f"Only <@{result.requester_id}>, who asked, or an admin can decide this.",
                ephemeral=True,
            )
        case "decided" | "expired":
            assert result.status is not None
            await interaction.response.edit_message(
                content=with_outcome(
                    interaction.message.content if interaction.message else "",
                    result.status,
                    interaction.user.id,
                ),
                view=approval_view(approval_id, disabled=True),
            )
            if result.outcome == "expired":
                await interaction.followup.send(
                    "This request expired because the bot restarted. Mention me again to retry.",
                    ephemeral=True,
                )
        case "already_decided":
            await interaction.response.send_message(
                f"This was already decided ({result.status}).", ephemeral=True
            )
        case _:
            await interaction.response.send_message(
                "I don't know this approval any more. Mention me again to retry.", ephemeral=True
            )


def approval_view(approval_id: int, *, disabled: bool = False) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for action, _, _ in _BUTTONS:
        view.add_item(ApprovalButton(approval_id, action, disabled=disabled))
    return view


def prompt_text(event: ApprovalRequested) -> str:
    arguments = json.dumps(event.arguments, indent=2, ensure_ascii=False, default=str)
    if len(arguments) > MAX_ARGUMENTS_CHARS:
        arguments = arguments[:MAX_ARGUMENTS_CHARS] + "\n… (truncated)"
    # A ``` inside the arguments would end the code block early; a zero-width space defuses it.
    arguments = arguments.replace("```", "`\u200b``")
    return (
        f"🔐 **Approval needed**, <@{event.requester_id}>: the model wants to run "
        f"`{event.tool}` from `{event.server}` with:\n```json\n{arguments}\n```"
    )


def with_outcome(content: str, status: str, user_id: int | None) -> str:
    line = _OUTCOME_LINES.get(status, f"Decided: {status}.").format(user=user_id)
    if line in content:
        return content  # shown already (e.g. expired at start-up, then clicked)
    return f"{content}\n{line}" if content else line


class DiscordApprovals:
    """Sends approval prompts and shows outcomes that no click reported (timeouts, restarts)."""

    def __init__(self, broker: ApprovalBroker, store: Any) -> None:
        self._broker = broker
        self._store = store
        self._prompts: dict[int, discord.Message] = {}

    async def send_prompt(
        self, event: ApprovalRequested, anchor: discord.Message
    ) -> discord.Message:
        # Only the requester may be pinged: the text includes model-chosen arguments.
        # fail_if_not_exists=False: an anchor deleted meanwhile must not stop the prompt.
        message = await anchor.channel.send(
            prompt_text(event),
            reference=anchor.to_reference(fail_if_not_exists=False),
            view=approval_view(event.approval_id),
            mention_author=False,
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=False, users=[discord.Object(event.requester_id)]
            ),
        )
        self._prompts[event.approval_id] = message
        await self._store.attach_approval_message(event.approval_id, message.channel.id, message.id)
        return message

    async def show_resolution(self, event: ApprovalResolved) -> None:
        message = self._prompts.pop(event.approval_id, None)
        if message is None or event.status != "timeout":
            return  # a click already updated the message in its interaction response
        try:
            await message.edit(
                content=with_outcome(message.content, "timeout", None),
                view=approval_view(event.approval_id, disabled=True),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            log.warning("could not mark approval %s as timed out: %s", event.approval_id, exc)

    async def expire_stale(self, bot: discord.Client) -> int:
        """At start-up: prompts left by a previous process can no longer be answered."""
        stale = await self._store.expire_pending_approvals()
        for record in stale:
            if not record.message_id or not record.channel_id:
                continue
            channel = bot.get_partial_messageable(record.channel_id)
            message = channel.get_partial_message(record.message_id)
            try:
                current = await message.fetch()
                await message.edit(
                    content=with_outcome(current.content, "expired", None),
                    view=approval_view(record.id, disabled=True),
                    allowed_mentions=discord.AllowedMentions.none(),
                )
            except discord.HTTPException as exc:
                log.warning("could not mark approval %s as expired: %s", record.id, exc)
        return len(stale)
