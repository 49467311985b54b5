"""The fake Discord's reaction routes are as strict as Discord's: their own bucket, Add Reactions."""

from __future__ import annotations

import discord
import pytest

from tests.fakes.discord.ratelimit import RateLimiter
from tests.fakes.discord.state import ADD_REACTIONS
from tests.test_fake_discord import Bot, channel_of, make_fake, running  # noqa: F401


def test_reactions_have_a_per_channel_bucket_of_their_own() -> None:
    limiter = RateLimiter(enabled=True, message_bucket=(5, 5.0), global_limit_per_s=50)
    assert limiter.check("reactions", "1").status == 200
    refused = limiter.check("reactions", "1")
    assert refused.status == 429
    assert refused.headers["Via"] and 0 < refused.body["retry_after"] <= 0.3
    assert limiter.check("reactions", "2").status == 200  # another channel's window
    assert limiter.check("messages", "1").status == 200  # messages keep their own


async def test_the_bot_adds_and_removes_its_reaction_and_needs_add_reactions(
    make_fake,  # noqa: F811
) -> None:
    fake = await make_fake(rate_limits=True)  # noqa: F811
    cid = fake.add_channel("react")
    user = fake.add_user("reacter")
    asked = await fake.send_message(cid, user, "hello")
    async with running(Bot(), fake) as bot:
        message = await channel_of(bot, cid).fetch_message(int(asked["id"]))
        await message.add_reaction("👀")
        assert [r["emoji"]["name"] for r in fake.message(asked["id"])["reactions"]] == ["👀"]
        # A second reaction request in the same channel at once waits out the bucket (no 429).
        await message.remove_reaction("👀", bot.user)
        assert fake.message(asked["id"])["reactions"] == []
        assert fake.counters["429"] == 0
        await fake.deny_bot(cid, ADD_REACTIONS)
        channel = channel_of(bot, cid)
        await fake.wait_for(lambda: not channel.permissions_for(channel.guild.me).add_reactions)
        with pytest.raises(discord.Forbidden) as refused:
            await message.add_reaction("✅")
        assert refused.value.code == 50013
