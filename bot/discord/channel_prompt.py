"""Which system prompt a channel uses: /system's, then discord.channels', then llm.system_prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.config import Settings


@dataclass(frozen=True)
class ChannelPrompt:
    text: str
    source: str  # where it comes from, in words an operator recognises
    set_here: bool = False  # set with /system for exactly this channel (what clear: removes)


async def effective_prompt(store: Any, settings: Settings, channel: Any) -> ChannelPrompt:
    """The channel's own prompt, else (for a thread that is not listed itself) its parent's.

    Per channel a /system prompt wins over the configured one. A thread listed in
    discord.channels does not follow its parent, as for every other channel setting.
    """
    parent_id = getattr(channel, "parent_id", None)
    ids = [channel.id, parent_id] if parent_id else [channel.id]
    stored = await store.channel_prompts(ids)
    configured = settings.discord.channels
    for channel_id in ids:
        if channel_id != channel.id:
            where = "the parent channel"
        else:
            where = "this thread" if parent_id else "this channel"
        if channel_id in stored:
            return ChannelPrompt(
                stored[channel_id],
                f"set with /system for {where}",
                set_here=channel_id == channel.id,
            )
        entry = configured.get(channel_id)
        if entry is not None:
            if entry.system_prompt:
                return ChannelPrompt(
                    entry.system_prompt, f"discord.channels.{channel_id}.system_prompt"
                )
            break
    return ChannelPrompt(settings.llm.system_prompt, "llm.system_prompt")
