"""The fake Discord's global limit belongs to the bot token: every connection of it shares one
window of 50 requests a second, as two shard processes of one bot do on the real Discord."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.global_limit import GlobalLimit
from tests.fakes.discord.ratelimit import RateLimiter


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord(rate_limits=True)
    await fake.start()
    yield fake
    await fake.stop()


async def get_me(session: aiohttp.ClientSession, fake: FakeDiscord) -> tuple[int, dict, dict]:
    headers = {"Authorization": f"Bot {fake.token}"}
    async with session.get(f"{fake.url}/api/v10/users/@me", headers=headers) as response:
        return response.status, dict(response.headers), await response.json()


async def test_two_connections_of_one_token_share_fifty_requests_a_second(
    fake: FakeDiscord,
) -> None:
    # Two sessions, two connection pools: as two processes of one bot would connect.
    async with aiohttp.ClientSession() as first, aiohttp.ClientSession() as second:
        # At once: one by one, 50 round trips could outlast the window's second.
        first_answers = await asyncio.gather(*(get_me(first, fake) for _ in range(50)))
        refused = await get_me(second, fake)
    assert [status for status, _, _ in first_answers] == [200] * 50
    status, headers, body = refused
    assert status == 429
    assert headers["X-RateLimit-Global"] == "true"
    assert headers["X-RateLimit-Scope"] == "global"
    assert body["global"] is True and 0 < body["retry_after"] <= 1.001
    assert fake.counters["global_429"] == 1


async def test_the_global_window_opens_again_after_its_second(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as first, aiohttp.ClientSession() as second:
        await asyncio.gather(*(get_me(first, fake) for _ in range(50)))
        status, _, body = await get_me(second, fake)
        assert status == 429
        await asyncio.sleep(body["retry_after"])
        assert (await get_me(second, fake))[0] == 200


def test_each_token_has_a_window_of_its_own() -> None:
    limit = GlobalLimit(per_s=2)
    assert limit.take("Bot a", 0.0) is None and limit.take("Bot a", 0.1) is None
    assert limit.take("Bot a", 0.2) == 0.8
    assert limit.take("Bot b", 0.2) is None  # another bot's requests are not counted here
    assert limit.take("Bot a", 1.0) is None


def test_the_global_window_counts_arrivals_not_when_a_busy_fake_gets_round_to_them() -> None:
    # 50 arrived in the first second, 1 more at 1.05 s; a busy fake checks them all at 1.1 s.
    limiter = RateLimiter(enabled=True, message_bucket=(5, 5.0), global_limit_per_s=50)
    arrivals = [i / 50 for i in range(50)] + [1.05]
    decisions = [  # a route bucket each (their own limits aside): only the global window binds
        limiter.check("other", str(n), token="Bot t", arrived_at=t) for n, t in enumerate(arrivals)
    ]
    assert [d.status for d in decisions] == [200] * 51  # Discord: the 51st is in a new second
