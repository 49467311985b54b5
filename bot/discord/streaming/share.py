"""This process's part of Discord's global limit: the token's 50 requests/s belong to all shards."""

from __future__ import annotations

from bot.config import DiscordConfig
from bot.discord.streaming.budget import Limits

# Discord's global limit for a bot token, whatever the number of processes using it.
DISCORD_GLOBAL_PER_S = 50


def global_share(discord: DiscordConfig) -> int:
    """Requests per second this process may make: `discord.global_rate_limit` if set, else its
    shards' part of the token's 50 (two processes of half the shards each plan 25/s, never 100;
    rounded down, so the parts never add up to more than the whole)."""
    if discord.global_rate_limit is not None:
        return discord.global_rate_limit
    return shard_share(DISCORD_GLOBAL_PER_S, discord)


def shard_share(per_s: int, discord: DiscordConfig) -> int:
    """This process's shards' part of `per_s` for the whole bot."""
    if discord.shard_ids is None or not discord.shard_count:
        return per_s
    return max(per_s * len(set(discord.shard_ids)) // discord.shard_count, 1)


def limits_for(per_s: int) -> Limits:
    """The budget's limits for a global window of `per_s`: intermediate edits keep the same
    four fifths of it as at the full 50/s, so finals and first parts always have room."""
    return Limits(global_per_s=per_s, global_edits_per_s=max(per_s * 4 // 5, 1))
