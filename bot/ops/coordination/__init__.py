"""Coordination of the processes of one bot token through Redis (`coordination.redis_url`)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Settings
from bot.core.turn_log import CostOf
from bot.discord.streaming.share import DISCORD_GLOBAL_PER_S, shard_share
from bot.ops.coordination.limits import SharedLimits
from bot.ops.coordination.link import Link, default_prefix
from bot.ops.coordination.window import SharedWindow


@dataclass(frozen=True)
class Coordination:
    link: Link
    window: SharedWindow
    limits: SharedLimits


def connect(settings: Settings, token: str, cost_of: CostOf | None) -> Coordination:
    """No connection is made yet: the first call connects, and a Redis that is not up at
    start-up is the same as one that went away (this process starts alone)."""
    config = settings.coordination
    assert config.redis_url is not None
    link = Link(config.redis_url.get_secret_value(), config.prefix or default_prefix(token))
    per_s = settings.discord.global_rate_limit or DISCORD_GLOBAL_PER_S
    window = SharedWindow(link, per_s=per_s, share_per_s=shard_share(per_s, settings.discord))
    return Coordination(link=link, window=window, limits=SharedLimits(link, cost_of))
