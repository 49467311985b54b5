"""Catch-up's REST reads go under the write budget's global window, as recent context's read does:
a plain discord.py client against the fake Discord, its requests seen by the budget's trace."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import discord
import pytest
import yarl

from bot.discord.catch_up import MAX_READ, read_after
from bot.discord.streaming.budget import Limits
from bot.discord.streaming.budget_feed import trace_config
from bot.discord.streaming.write_scheduler import WriteScheduler
from tests.fakes.discord import FakeDiscord

LIMITS = Limits(channel_writes=5, channel_period_s=5.0, global_per_s=10)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """A fake Discord with discord.py pointed at it (as tests/fakes/discord/sitecustomize does
    for the bot's process); restored after."""
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    fake = FakeDiscord(rate_limits=True)
    await fake.start()
    discord.http.Route.BASE = fake.url + "/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
        fake.url.replace("http://", "ws://") + "/gateway"
    )
    try:
        yield fake
    finally:
        await fake.stop()
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


async def test_catch_up_reads_wait_for_room_in_the_global_window_and_count_once(
    fake: FakeDiscord,
) -> None:
    """With the global window full, neither the channel (not cached) nor its history is read;
    once room comes both are, each counted once; one request reads at most 100 messages, the
    newest."""
    channel_id = fake.add_channel("catch-up-reads")
    user = fake.add_user("catch-up-reader")
    sent = [await fake.send_message(channel_id, user, f"m{i}") for i in range(MAX_READ + 20)]
    clock = Clock()
    scheduler = WriteScheduler(LIMITS, clock=clock)
    client = discord.Client(intents=discord.Intents.none(), http_trace=trace_config(scheduler))
    await client.login(fake.token)
    try:
        clock.now += 20.0  # the login's own request aged out of the window
        while scheduler.may_type():  # the window fills up (as a burst of answers would)
            pass
        before = len(fake.requests)
        read = asyncio.create_task(read_after(client, scheduler, channel_id, 0))
        await asyncio.sleep(0.5)
        assert not read.done()
        assert [r.path for r in fake.requests[before:]] == []  # nothing left while full
        clock.now += 11.0  # the places taken age out (unanswered ones after 10 s)
        messages = await asyncio.wait_for(read, 10)
    finally:
        await client.close()
    reads = [r for r in fake.requests[before:] if r.method == "GET"]
    assert [r.path.split("?")[0].removeprefix("/api/v10") for r in reads] == [
        f"/channels/{channel_id}",
        f"/channels/{channel_id}/messages",
    ]
    assert [m.id for m in messages] == [int(m["id"]) for m in reversed(sent)][:MAX_READ]
    # The two reads hold two places of ten (each counted once): eight more fit, not six.
    assert [scheduler.may_type() for _ in range(9)] == [True] * 8 + [False]
