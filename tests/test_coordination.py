"""The Redis coordination's parts against a real Redis: the shared global window keeps the
budget's priorities across processes, a global 429 holds every process, limits count across
processes with leases that lapse, and a Redis that goes away leaves each process its share."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.config import DiscordConfig
from bot.core.limits import BUSY
from bot.discord.streaming.budget import Counted, Priority
from bot.discord.streaming.share import limits_for, shard_share
from bot.discord.streaming.write_scheduler import WriteScheduler
from bot.ops.coordination.limits import SharedLimits
from bot.ops.coordination.link import Link, default_prefix
from bot.ops.coordination.scripts import TAKE
from bot.ops.coordination.window import GONE_PAUSE_S, GRACE_S, HOLD_S, TYPING_PERIOD_S, SharedWindow
from tests.redis_service import SHARED_URL, drop_prefix, own_prefix, private_redis, shared_redis

pytestmark = pytest.mark.redis


@pytest_asyncio.fixture
async def prefix() -> AsyncIterator[str]:
    client = await shared_redis()
    name = own_prefix()
    yield name
    await drop_prefix(client, name)
    await client.aclose()


@pytest_asyncio.fixture
async def links(prefix: str) -> AsyncIterator[list[Link]]:
    """Two processes' links to the same Redis and prefix."""
    made = [Link(SHARED_URL, prefix), Link(SHARED_URL, prefix)]
    yield made
    for link in made:
        await link.aclose()


async def take(
    link: Link,
    slot: str,
    *,
    first: bool,
    age_ms: int = 0,
    size: int = 2,
    edits: int = 1,
    hold_ms: int = 300,
) -> int:
    script = link.script(TAKE)
    keys = [link.key("global"), link.key("global", "waiting"), link.key("global", "hold")]
    answer = await script(keys=keys, args=[slot, int(first), age_ms, size, edits, hold_ms])
    return int(answer[0])


async def test_the_window_is_one_for_every_process(links: list[Link]) -> None:
    a, b = links
    assert await take(a, "a1", first=True) == 0
    assert await take(b, "b1", first=True) == 0
    assert await take(a, "a2", first=True) > 0  # full: two processes, one window of two


async def test_finals_go_before_edits_and_oldest_first_across_processes(
    links: list[Link],
) -> None:
    a, b = links
    assert await take(a, "fill1", first=True, hold_ms=200) == 0
    assert await take(a, "fill2", first=True, hold_ms=3000) == 0
    # While full: b's final waits (queued), a's edit waits, then an older final of a's comes.
    assert await take(b, "b-final", first=True) > 0
    assert await take(a, "a-edit", first=False) > 0
    assert await take(a, "a-old-final", first=True, age_ms=5000) > 0
    await asyncio.sleep(0.25)  # the first fill ages out: one free place
    assert await take(a, "a-edit", first=False) > 0  # finals are waiting: no edit takes it
    assert await take(b, "b-final", first=True) > 0  # it is kept for the older final...
    assert await take(a, "a-old-final", first=True, age_ms=5000) == 0  # ...of the other process
    assert await take(b, "b-final", first=True) > 0  # full again


async def test_a_global_429_holds_every_process(links: list[Link]) -> None:
    a, b = links
    window_a = SharedWindow(a, per_s=50, share_per_s=25)
    window_a.hold(0.5)
    await asyncio.sleep(0.05)  # the hold is sent without waiting
    wait = await take(b, "b1", first=True, size=50, edits=40)
    assert 300 < wait <= 500


async def test_the_gate_admits_at_once_when_there_is_room(links: list[Link]) -> None:
    window = SharedWindow(links[0], per_s=3, share_per_s=1)
    await asyncio.gather(*(window.admit(Priority.FINAL, 0.0) for _ in range(3)))
    assert await take(links[1], "late", first=True, size=3, edits=2) > 0
    assert window.limits() == limits_for(3)


async def test_limits_count_across_processes(links: list[Link]) -> None:
    a, b = (SharedLimits(link, None) for link in links)
    release = await a.admit(7, concurrent=1, per_minute=10)
    assert callable(release)
    assert await b.admit(7, concurrent=1, per_minute=10) == BUSY
    assert callable(await b.admit(8, concurrent=1, per_minute=10))  # someone else
    release()
    await asyncio.sleep(0.05)  # the release is sent without waiting
    again = await b.admit(7, concurrent=1, per_minute=2)
    assert callable(again)
    refused = await a.admit(7, concurrent=5, per_minute=2)
    assert isinstance(refused, str) and "faster" in refused


async def test_a_lease_nobody_renews_lapses(links: list[Link]) -> None:
    a, b = (SharedLimits(link, None, lease_s=0.3) for link in links)
    assert callable(await a.admit(9, concurrent=1, per_minute=10))  # and its process dies
    assert await b.admit(9, concurrent=1, per_minute=10) == BUSY
    await asyncio.sleep(0.4)
    assert callable(await b.admit(9, concurrent=1, per_minute=10))


async def test_usage_adds_up_across_processes(links: list[Link]) -> None:
    a, b = (SharedLimits(link, None) for link in links)
    assert await a.used_today(5) == (0, 0.0)
    a.add_usage(5, 100, 0.25)
    b.add_usage(5, 50, None)
    await asyncio.sleep(0.05)
    assert await b.used_today(5) == (150, 0.25)


async def test_without_redis_each_process_takes_its_share_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "bot.coordination")
    async with private_redis() as server:
        link = Link(server.url, own_prefix())
        window = SharedWindow(link, per_s=50, share_per_s=25)
        limits = SharedLimits(link, None)
        await window.admit(Priority.FINAL, 0.0)
        assert window.limits() == limits_for(50)
        server.stop()
        # Granted before: it finds Redis gone, then waits out the pause like everything new.
        waiting = asyncio.create_task(window.admit(Priority.FINAL, 0.0))
        while link.up:  # noqa: ASYNC110 - polled: the link announces nothing to a test
            await asyncio.sleep(0.01)
        found_gone = time.monotonic()
        assert window.limits() == limits_for(25)
        # Nothing new goes while what the other process placed in the shared window's last
        # second can still reach Discord beside this one's share.
        scheduler = WriteScheduler(gate=window)
        assert not scheduler.may_type()
        await scheduler.acquire(1, 1, Priority.FINAL)
        assert time.monotonic() - found_gone >= GONE_PAUSE_S - 0.05
        alone = await waiting  # then went alone, the share deciding
        assert alone is not None
        assert time.monotonic() - found_gone >= GONE_PAUSE_S - 0.05
        assert await limits.admit(1, concurrent=1, per_minute=1) is None
        await window.admit(Priority.EDIT, 0.0)
        down = [r.message for r in caplog.records if "unreachable" in r.message]
        assert len(down) == 1
        assert "redis.sock" not in down[0]  # the address may hold a password: never logged
        await server.start()
        await asyncio.sleep(1.1)  # a process looks again a second after a failure
        await window.admit(Priority.FINAL, 0.0)
        # Back, but the share a while longer: the other processes may still be alone.
        assert link.up and window.limits() == limits_for(25)
        await asyncio.sleep(GRACE_S)
        assert window.limits() == limits_for(50)
        assert any("back" in r.message for r in caplog.records)
        await link.aclose()


@pytest_asyncio.fixture(name="window")
async def window_alone() -> AsyncIterator[SharedWindow]:
    """A process's shared window (a share of 2 in 4) whose Redis has just gone away."""
    async with private_redis() as server:
        link = Link(server.url, own_prefix())
        window = SharedWindow(link, per_s=4, share_per_s=2)
        server.stop()
        yield window
        await link.aclose()


async def test_alone_a_place_is_held_until_its_answer_not_for_a_fixed_time(
    window: SharedWindow,
) -> None:
    # With Redis away a write can still leave seconds after its grant on a loaded host: its place
    # in this process's share stays taken until a second after its answer, and a write never
    # made gives its place back at once.
    first = await window.admit(Priority.FINAL, 0.0)  # finds Redis gone, waits the pause
    second = await window.admit(Priority.FINAL, 0.0)
    assert first is not None and second is not None
    third = asyncio.create_task(window.admit(Priority.FINAL, 0.0))
    await asyncio.sleep(2.0)  # longer than any fixed window of grants: both still unsent
    assert not third.done()
    window.answered(first, sent=False)  # never made: its place is free at once
    assert await asyncio.wait_for(third, 1.0) is not None
    fourth = asyncio.create_task(window.admit(Priority.FINAL, 0.0))
    window.answered(second)
    await asyncio.sleep(0.5)
    assert not fourth.done()  # answered: held a second from the answer
    assert await asyncio.wait_for(fourth, 1.0) is not None


async def test_alone_typing_and_writes_share_the_one_share(window: SharedWindow) -> None:
    # With Redis away, typing (reactions, reads) and message writes count toward Discord's 50/s
    # alike: together they stay within this process's share, each held until its answer.
    written = await window.admit(Priority.FINAL, 0.0)  # finds Redis gone, waits the pause
    assert written is not None and window.typing_room()
    typing = Counted(granted_at=time.monotonic(), left_at=time.monotonic())
    window.typing_sent(typing)
    assert not window.typing_room()  # one write and one typing: the share of 2 is used
    waiting = asyncio.create_task(window.admit(Priority.FINAL, 0.0))
    await asyncio.sleep(0.5)
    assert not waiting.done()  # the typing request holds its place until its answer
    typing.answered_at = time.monotonic() - TYPING_PERIOD_S  # answered a period ago
    assert await asyncio.wait_for(waiting, 1.0) is not None
    # Typing alone may fill the share too: a write then waits for it, with no write's hold.
    for place in (written, waiting.result()):
        window.answered(place, sent=False)
    both = [Counted(granted_at=time.monotonic(), left_at=time.monotonic()) for _ in (1, 2)]
    for counted in both:
        window.typing_sent(counted)
    blocked = asyncio.create_task(window.admit(Priority.FINAL, 0.0))
    await asyncio.sleep(0.3)
    assert not blocked.done()
    both[0].answered_at = time.monotonic() - TYPING_PERIOD_S
    assert await asyncio.wait_for(blocked, 1.0) is not None


def test_the_prefix_is_the_application_id_read_from_the_token() -> None:
    assert default_prefix("MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.xyz") == "mcpcord:123456789012345678"
    odd = default_prefix("fake-bot-token")
    assert odd.startswith("mcpcord:") and "fake" not in odd


def test_the_fallback_share_follows_the_shards() -> None:
    assert shard_share(50, DiscordConfig(shard_count=2, shard_ids=[1])) == 25
    assert shard_share(50, DiscordConfig()) == 50


async def test_a_write_cancelled_while_it_asks_redis_ends_cancelled(links: list[Link]) -> None:
    # A reply's flush loop is cancelled when the reply finishes, often while its write waits
    # here; a cancellation lost inside redis-py leaves that loop running and the reply unfinished.
    window = SharedWindow(links[0], per_s=2, share_per_s=1)
    window.hold(30)  # as after a global 429: nothing is admitted while the test runs
    await asyncio.sleep(0.05)
    tasks = [asyncio.create_task(window.admit(Priority.FINAL, 0.0)) for _ in range(300)]
    for i, task in enumerate(tasks):
        await asyncio.sleep(0.0005 * (i % 7))
        task.cancel()
    await asyncio.wait(tasks)
    assert [t for t in tasks if not t.cancelled()] == []


async def test_an_answered_write_is_held_a_second_from_its_answer(links: list[Link]) -> None:
    # Discord counts a request somewhere between leaving and its answer: a slow answer must
    # keep its place longer than its grant alone would (else 51 could land in one second).
    window = SharedWindow(links[0], per_s=10, share_per_s=5)
    slot = await window.admit(Priority.FINAL, 0.0)
    assert slot is not None
    key = links[0].key("global")
    expiry = await links[0].redis.zscore(key, slot)  # HOLD_S after its grant
    await asyncio.sleep(0.6)  # a slow answer
    window.answered(slot)
    assert await window.admit(Priority.FINAL, 0.0) is not None  # carries the answer along
    held = await links[0].redis.zscore(key, slot)
    # Answered 0.6 s after its grant: held a second from then, 1.6 s after the grant.
    assert held >= expiry - HOLD_S * 1000 + 1600 - 50


async def test_a_place_that_lapsed_before_its_answer_is_put_back_for_its_second(
    links: list[Link],
) -> None:
    # A request can leave long after its grant (a stalled host): if its place lapsed meanwhile,
    # its answer puts the place back until a second after; a write never made frees its own.
    window = SharedWindow(links[0], per_s=10, share_per_s=5)
    key = links[0].key("global")
    slot = await window.admit(Priority.FINAL, 0.0)
    assert slot is not None
    await links[0].redis.zrem(key, slot)  # lapsed, as HOLD_S after a grant with no answer
    window.answered(slot)
    never = await window.admit(Priority.FINAL, 0.0)  # carries the answer along
    assert never is not None
    assert await links[0].redis.zscore(key, slot) is not None
    window.answered(never, sent=False)
    await window.admit(Priority.FINAL, 0.0)
    assert await links[0].redis.zscore(key, never) is None


async def test_a_typing_place_is_held_until_a_second_after_its_answer(links: list[Link]) -> None:
    # Typing, reactions and history reads share the fifth of the window kept out of Redis;
    # a slow answer must keep its place past the second after its grant, as writes do.
    window = SharedWindow(links[0], per_s=10, share_per_s=10)  # two typing places a second
    assert await window.admit(Priority.FINAL, 0.0) is not None  # the link is up
    now = time.monotonic()
    first, second = Counted(granted_at=now, left_at=now), Counted(granted_at=now, left_at=now)
    for counted in (first, second):
        assert window.typing_room()
        window.typing_sent(counted)
    assert not window.typing_room()
    await asyncio.sleep(1.5)  # well past a second from the grants, still unanswered
    assert not window.typing_room()
    first.answered_at = time.monotonic()
    assert not window.typing_room()
    await asyncio.sleep(1.05)
    assert window.typing_room()


async def test_reactions_and_reads_share_the_typing_part_with_other_processes(
    links: list[Link],
) -> None:
    # A status reaction the gate never saw landed beside the other process's full window:
    # the 429s of the two-shard run. Typing, reactions and reads all take the typing part.
    window = SharedWindow(links[0], per_s=10, share_per_s=10)
    scheduler = WriteScheduler(gate=window)
    assert await window.admit(Priority.FINAL, 0.0) is not None  # the link is up
    assert [scheduler.may_type() for _ in range(2)] == [True, True]
    assert not scheduler.may_spare()
    assert not await scheduler.room_for_read(0.1)
