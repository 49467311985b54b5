"""/forget: anyone erases what the bot stores about them, after a confirmation button.

The one command that does not apply the access lists: erasing one's own data must work for a
blocked user and in DMs too (Discord's Developer Policy).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

if TYPE_CHECKING:
    from bot.discord.host import BotHost

WHAT = (
    "This erases what I store about you, everywhere: your conversations with me, your turns in "
    "shared conversations (they will read `[removed at the user's request]`), the approvals and "
    '"always allow" grants you asked for, and your name on approvals you decided. Your usage '
    "of the last 24 hours stays, without your name, so daily limits still count it. Messages "
    "already posted in Discord (answers, audit lines) stay; delete them there."
)
PROVIDER_KEEPS = (
    "\nIn shared conversations the model provider keeps the history (not me): your words there "
    "stay with the provider until a manager /resets that conversation or the provider expires it."
)
CONFIRM = "\n**Erase it?** This cannot be undone."
NOT_YOURS = "This button is for the person who asked to be forgotten."
DONE = "Done: I've forgotten you{details}."


def custom_id(user_id: int) -> str:
    return f"mcpf:{user_id}:confirm"


def summary(erased: Any) -> str:
    parts = [
        (erased.conversations, "conversation(s) deleted"),
        (erased.shared_turns, "turn(s) removed from shared conversations"),
        (erased.approvals + erased.grants, "approval(s) and grant(s) deleted"),
        (erased.decisions, "decision(s) kept without your name"),
    ]
    shown = ", ".join(f"{count} {what}" for count, what in parts if count)
    return DONE.format(details=f" ({shown})" if shown else "")


def _provider_keeps_history(bot: BotHost) -> bool:
    settings = bot.services.settings
    llm = settings.llm
    shared = settings.discord.scope != "user"
    return shared and llm.backend == "responses" and llm.state == "server"


@app_commands.command(name="forget", description="Erase everything I store about you.")
async def forget(interaction: discord.Interaction[Any]) -> None:
    bot: BotHost = interaction.client  # type: ignore[assignment]
    # No access check here, on purpose: see the module's docstring.
    refused = bot.services.forgetting.refusal(interaction.user.id)
    if refused:
        await interaction.response.send_message(refused, ephemeral=True)
        return
    text = WHAT + (PROVIDER_KEEPS if _provider_keeps_history(bot) else "") + CONFIRM
    view = discord.ui.View(timeout=None)
    view.add_item(ForgetButton(interaction.user.id))
    await interaction.response.send_message(text, view=view, ephemeral=True)


class ForgetButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"mcpf:(?P<user_id>[0-9]+):confirm"
):
    """Rebuilt from its custom_id on every click, so a confirmation survives a restart."""

    def __init__(self, user_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Forget me", style=discord.ButtonStyle.danger, custom_id=custom_id(user_id)
            )
        )
        self.user_id = user_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> ForgetButton:
        return cls(int(match["user_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot: BotHost = interaction.client
        if interaction.user.id != self.user_id:
            await interaction.response.send_message(NOT_YOURS, ephemeral=True)
            return
        forgetting = bot.services.forgetting
        refused = forgetting.refusal(self.user_id)
        if refused:
            await interaction.response.edit_message(content=refused, view=None)
            return
        # Answered at once (Discord waits 3 s); other people's turns in the shared
        # conversations this user spoke in finish before their words go.
        await interaction.response.edit_message(content="Forgetting you…", view=None)
        erased = await forgetting.forget(self.user_id)
        text = erased if isinstance(erased, str) else summary(erased)
        await interaction.edit_original_response(content=text)
