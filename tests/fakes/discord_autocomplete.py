"""Slash-command autocomplete for the fake Discord: a user typing into one option.

Kept outside `tests/fakes/discord/` (whose interactions others extend): it builds the payload
with the fake's own helpers and delivers it like any other interaction.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.interactions import Interaction, _base_payload, _find_command

APPLICATION_COMMAND_AUTOCOMPLETE = 4
STRING = 3


async def autocomplete(
    fake: FakeDiscord, name: str, user_id: int, channel_id: int, typed: dict[str, str], focused: str
) -> list[dict[str, Any]]:
    """Send what the user has typed so far (string options) with `focused` being edited;
    returns the choices the bot answered (interaction response type 8)."""
    command = _find_command(fake, name, channel_id)
    known = {o["name"]: o for o in command.get("options") or []}
    if focused not in known or not known[focused].get("autocomplete"):
        raise ValueError(f"/{name} has no autocompleted option {focused!r}")
    options = [
        {
            "name": key,
            "type": STRING,
            "value": value,
            **({"focused": True} if key == focused else {}),
        }
        for key, value in typed.items()
    ]
    data = {"id": command["id"], "name": name, "type": 1, "options": options}
    payload = _base_payload(fake, APPLICATION_COMMAND_AUTOCOMPLETE, channel_id, user_id, data)
    interaction: Interaction = await fake._start_interaction(payload, "autocomplete", None)
    response = await interaction.wait_response()
    if response.get("type") != 8:
        raise AssertionError(f"autocomplete answered with {response}")
    return list(response["data"]["choices"])
