"""Streaming a turn into Discord: rendering, splitting, the write budget and its retries.

Imports bot.core, discord and the door (bot.discord.*); other wings use only what this door lends.
"""

from bot.discord.streaming.mentions import NO_MENTIONS
from bot.discord.streaming.retry import describe, is_transient
from bot.discord.streaming.split import split_message

__all__ = ["NO_MENTIONS", "describe", "is_transient", "split_message"]
