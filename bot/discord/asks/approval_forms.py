"""The forms behind Edit & approve and Deny with reason: `mcpm:` modals. Only their look lives
here; a submit is read and decided by DiscordApprovals.on_interaction (see modal_values.py)."""

from __future__ import annotations

from typing import Any

import discord

from bot.core.arguments import pretty
from bot.discord.asks.approval_text import MODAL_TEXT_MAX, REASON_MAX


def modal_id(approval_id: int, kind: str) -> str:
    return f"mcpm:{approval_id}:{kind}"


class ArgumentsModal(discord.ui.Modal):
    """Edit & approve: the arguments as JSON, checked against the tool's schema on submit."""

    def __init__(self, approval_id: int, arguments: dict[str, Any]) -> None:
        super().__init__(
            title="Edit the arguments, then approve", custom_id=modal_id(approval_id, "edit")
        )
        self.approval_id = approval_id
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


class ReasonModal(discord.ui.Modal):
    """Deny with a reason: the words go to the model as the tool's result."""

    def __init__(self, approval_id: int) -> None:
        super().__init__(
            title="Deny, and tell the model why", custom_id=modal_id(approval_id, "reason")
        )
        self.approval_id = approval_id
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
