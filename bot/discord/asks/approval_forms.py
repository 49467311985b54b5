"""The forms behind Edit & approve and Deny with reason: `mcpm:` modals that decide on submit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.core.arguments import pretty
from bot.discord.asks.approval_text import MODAL_TEXT_MAX, REASON_MAX

# approvals.decide, handed in: the forms are opened from there.
Decide = Callable[..., Awaitable[None]]


def modal_id(approval_id: int, kind: str) -> str:
    return f"mcpm:{approval_id}:{kind}"


class ArgumentsModal(discord.ui.Modal):
    """Edit & approve: the arguments as JSON, checked against the tool's schema on submit."""

    def __init__(self, approval_id: int, arguments: dict[str, Any], decide: Decide) -> None:
        super().__init__(
            title="Edit the arguments, then approve", custom_id=modal_id(approval_id, "edit")
        )
        self.approval_id = approval_id
        self._decide = decide
        self.arguments: discord.ui.TextInput[Any] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph,
            custom_id="arguments",
            default=pretty(arguments),
            max_length=MODAL_TEXT_MAX,
        )
        self.add_item(
            discord.ui.Label(
                text="Arguments (JSON)",
                description="The tool runs once with exactly this.",
                component=self.arguments,
            )
        )

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await self._decide(
            interaction.client, interaction, self.approval_id, "edit", edited=self.arguments.value
        )
        # Only after success: discord.py drops a submitted modal only then.
        interaction.client.approvals.closed(self)


class ReasonModal(discord.ui.Modal):
    """Deny with a reason: the words go to the model as the tool's result."""

    def __init__(self, approval_id: int, decide: Decide) -> None:
        super().__init__(
            title="Deny, and tell the model why", custom_id=modal_id(approval_id, "reason")
        )
        self.approval_id = approval_id
        self._decide = decide
        self.reason: discord.ui.TextInput[Any] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph, custom_id="reason", max_length=REASON_MAX
        )
        self.add_item(
            discord.ui.Label(
                text="Reason",
                description="The model reads this and can try another way.",
                component=self.reason,
            )
        )

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await self._decide(
            interaction.client, interaction, self.approval_id, "reason", reason=self.reason.value
        )
        # Only after success: discord.py drops a submitted modal only then.
        interaction.client.approvals.closed(self)
