"""What Discord answers reaches the write budget through aiohttp's trace hooks, as discord.py sends."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from bot.discord.streaming.budget import Limits, Priority
from bot.discord.streaming.budget_feed import trace_config
from bot.discord.streaming.write_scheduler import WriteScheduler

LIMITS = Limits(channel_writes=5, channel_period_s=5.0, global_per_s=10)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def message_creates(
    create: Callable[[web.Request], Awaitable[web.Response]],
) -> AsyncIterator[str]:
    """A server on loopback whose message creates `create` answers; yields its base URL."""
    app = web.Application()
    app.router.add_post("/api/v10/channels/{channel}/messages", create)
    async with loopback(app) as url:
        yield url


@contextlib.asynccontextmanager
async def loopback(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def discord_429() -> AsyncIterator[str]:
    """Answers every message create with a global 429 shaped like Discord's: the exact wait
    only in the body, the header rounded up to whole seconds."""

    async def create(request: web.Request) -> web.Response:
        body = {"message": "You are being rate limited.", "retry_after": 0.25, "global": True}
        headers = {"Retry-After": "1", "X-RateLimit-Global": "true", "Via": "1.1 google"}
        return web.Response(
            status=429, text=json.dumps(body), headers=headers, content_type="application/json"
        )

    async with message_creates(create) as url:
        yield url


async def test_a_global_429_holds_writes_for_the_exact_wait_in_its_body(discord_429: str) -> None:
    clock = Clock()
    scheduler = WriteScheduler(LIMITS, clock=clock)
    session = aiohttp.ClientSession(trace_configs=[trace_config(scheduler)])
    async with session, session.post(f"{discord_429}/api/v10/channels/7/messages") as resp:
        assert resp.status == 429
        # The body is still there for discord.py after the trace read it.
        assert (await resp.json())["retry_after"] == 0.25
    budget = scheduler.budget
    budget.submit(8, 1, Priority.FINAL)
    assert budget.grant(clock.now + 0.2) == []
    assert budget.next_wake(clock.now + 0.2) == pytest.approx(clock.now + 0.25)
    assert len(budget.grant(clock.now + 0.25)) == 1


async def test_a_write_counts_when_it_is_sent(discord_429: str) -> None:
    """A message write seen leaving spends its channel's window even if the budget never
    granted it (a notice sent directly); five of them fill the window."""
    clock = Clock()
    scheduler = WriteScheduler(LIMITS, clock=clock)
    async with aiohttp.ClientSession(trace_configs=[trace_config(scheduler)]) as session:
        for _ in range(5):
            async with session.post(f"{discord_429}/api/v10/channels/9/messages", json={}):
                pass
    budget = scheduler.budget
    clock.now += 0.25  # past the global 429's wait: only the channel's window binds
    budget.submit(9, 1, Priority.FINAL)
    assert budget.grant(clock.now) == []
    assert budget.next_wake(clock.now) == pytest.approx(105.0)


@pytest.fixture
async def slow_discord(clock: Clock) -> AsyncIterator[str]:
    """Takes 2 s (on the test's clock) to answer a message write; channel 13's writes lose
    their connection instead."""

    async def create(request: web.Request) -> web.Response:
        clock.now += 2.0
        if request.match_info["channel"] == "13":
            assert request.transport is not None
            request.transport.abort()
        return web.json_response({"id": "1"})

    async with message_creates(create) as url:
        yield url


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.mark.parametrize(("channel", "fails"), [(12, False), (13, True)])
async def test_a_write_holds_its_window_until_a_period_after_its_answer(
    slow_discord: str, clock: Clock, channel: int, fails: bool
) -> None:
    """Sent at 100 and answered (or failed) at 102: Discord counted it somewhere in between,
    so the channel's next write waits until 107, not 105."""
    scheduler = WriteScheduler(Limits(channel_writes=1, channel_period_s=5.0), clock=clock)
    async with aiohttp.ClientSession(trace_configs=[trace_config(scheduler)]) as session:
        try:
            async with session.post(f"{slow_discord}/api/v10/channels/{channel}/messages") as r:
                assert r.status == 200
        except aiohttp.ClientConnectionError:
            assert fails
        else:
            assert not fails, "the write that should lose its connection was answered"
    budget = scheduler.budget
    budget.submit(channel, 1, Priority.FINAL)
    assert budget.grant(clock.now) == []
    assert budget.next_wake(clock.now) == pytest.approx(107.0)


async def test_a_history_read_waits_for_global_room_and_is_counted_once() -> None:
    """Recent context's one read per turn goes under the global window: it waits while the
    window is full, and the request that then leaves is not counted a second time."""
    clock = Clock()
    scheduler = WriteScheduler(LIMITS, clock=clock)
    assert [scheduler.may_type() for _ in range(11)] == [True] * 10 + [False]
    read = asyncio.create_task(scheduler.room_for_read(max_wait_s=30.0))
    await asyncio.sleep(0.2)
    assert not read.done()  # no room: the read waits
    clock.now += 11.0  # counted requests that never left age out after 10 s
    assert await asyncio.wait_for(read, 1.0) is True

    app = web.Application()
    app.router.add_get("/api/v10/channels/{channel}/messages", lambda _: web.json_response([]))
    async with (
        loopback(app) as base,
        aiohttp.ClientSession(trace_configs=[trace_config(scheduler)]) as session,
        session.get(f"{base}/api/v10/channels/5/messages?limit=30") as resp,
    ):
        assert resp.status == 200
    # The read holds one place of ten: nine more fit, not eight.
    assert [scheduler.may_type() for _ in range(10)] == [True] * 9 + [False]


def test_reactions_use_only_half_the_global_window() -> None:
    """Status reactions only decorate: with the window half used they wait, while typing (and
    the writes behind it) still find room."""
    scheduler = WriteScheduler(LIMITS, clock=Clock())
    assert [scheduler.may_spare() for _ in range(6)] == [True] * 5 + [False]
    assert [scheduler.may_type() for _ in range(6)] == [True] * 5 + [False]


async def test_a_history_read_that_finds_no_room_in_time_is_not_made() -> None:
    """In a burst that keeps the window shut (here a global 429 for 5 s), the question goes
    on without its recent context after max_wait_s instead of waiting for the window."""
    clock = Clock()
    scheduler = WriteScheduler(LIMITS, clock=clock)
    scheduler.rate_limited(None, 5.0)
    read = asyncio.create_task(scheduler.room_for_read(max_wait_s=1.0))
    await asyncio.sleep(0.2)
    assert not read.done()
    clock.now += 1.0
    assert await asyncio.wait_for(read, 1.0) is False
    clock.now += 4.0  # the 429 lifted: the read that gave up holds no place
    assert [scheduler.may_type() for _ in range(11)] == [True] * 10 + [False]
