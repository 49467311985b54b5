"""Every slash command and option says what it does (Discord shows these texts in the picker)."""

from __future__ import annotations

from bot.discord.commands.conversation import ALL_COMMANDS
from bot.discord.commands.forget import forget
from bot.discord.commands.prompt import prompt
from bot.discord.commands.status import status
from bot.discord.commands.system import system


def test_every_command_and_option_has_a_description() -> None:
    commands = (*ALL_COMMANDS, prompt, status, system, forget)
    names = {"reset", "tools", "model", "status", "system", "prompt", "forget"}
    assert {c.name for c in commands} == names
    for command in commands:
        # discord.py fills in "…" when a command or option has no description.
        assert len(command.description) > 15 and command.description != "…", command.name
        for option in command.parameters:
            assert len(option.description) > 15, f"/{command.name} {option.name}"
            assert option.description != "…", f"/{command.name} {option.name}"
