"""What every message the bot writes may ping: nobody. A model's `@everyone` or `<@id>` is text."""

from __future__ import annotations

import discord

NO_MENTIONS = discord.AllowedMentions.none()
