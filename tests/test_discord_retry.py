"""Which Discord request failures are worth sending again, and that they are sent again."""

from __future__ import annotations

import aiohttp
import discord
import pytest

from bot.discord.streaming import retry


class _Response:
    """The two attributes discord.HTTPException reads from an aiohttp response."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.reason = "test"


def http_error(cls: type[discord.HTTPException], status: int) -> discord.HTTPException:
    return cls(_Response(status), {"code": 0, "message": "test"})  # type: ignore[arg-type]


def test_transient_failures_are_network_errors_timeouts_and_5xx() -> None:
    assert retry.is_transient(aiohttp.ServerDisconnectedError())
    assert retry.is_transient(TimeoutError())
    assert retry.is_transient(ConnectionResetError())
    assert retry.is_transient(http_error(discord.DiscordServerError, 503))
    assert not retry.is_transient(http_error(discord.Forbidden, 403))
    assert not retry.is_transient(http_error(discord.NotFound, 404))
    assert not retry.is_transient(ValueError("a bug, not the network"))


async def test_with_retries_sends_again_only_after_transient_failures() -> None:
    no_wait = (0.0, 0.0, 0.0)
    failures: list[BaseException] = [aiohttp.ServerDisconnectedError(), TimeoutError()]

    async def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "sent"

    assert await retry.with_retries("test", flaky, no_wait) == "sent"

    calls = 0

    async def refused() -> str:
        nonlocal calls
        calls += 1
        raise http_error(discord.Forbidden, 403)

    with pytest.raises(discord.Forbidden):
        await retry.with_retries("test", refused, no_wait)
    assert calls == 1
