"""`python -m bot check --discord`: log in, list the guilds, and say per channel what the bot may do."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.config import Settings
from bot.ops.check_row import Row

LOGIN_TIMEOUT_S = 30.0


async def discord_rows(settings: Settings) -> list[Row]:
    import discord

    if settings.discord_token is None:
        return [Row("discord", False, "not checked: set DISCORD_TOKEN in the environment or .env")]
    intents = discord.Intents.none()
    intents.guilds = True  # guilds, channels, roles and overwrites: all the answer needs
    client: Any
    if settings.discord.shard_count:
        client = discord.AutoShardedClient(
            intents=intents,
            shard_count=settings.discord.shard_count,
            shard_ids=settings.discord.shard_ids,  # type: ignore[arg-type]  # None = all
        )
    else:
        client = discord.Client(intents=intents)
    ready = asyncio.Event()
    client.event(_on_ready(ready))
    async with client:
        runner = asyncio.create_task(client.start(settings.discord_token.get_secret_value()))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({runner, waiter}, timeout=LOGIN_TIMEOUT_S, return_when="FIRST_COMPLETED")
        waiter.cancel()
        if not ready.is_set():
            reason = _login_failure(runner)
            await client.close()
            return [Row("discord", False, reason)]
        rows = _rows(client, settings)
        await client.close()
        await asyncio.gather(runner, return_exceptions=True)
    return rows


def _on_ready(ready: asyncio.Event) -> Any:
    async def on_ready() -> None:
        ready.set()

    return on_ready


def _login_failure(runner: asyncio.Task[None]) -> str:
    import discord

    if not runner.done():
        runner.cancel()
        return f"no READY from the gateway within {LOGIN_TIMEOUT_S:g} s"
    exc = runner.exception()
    if isinstance(exc, discord.LoginFailure):
        return (
            "Discord rejected DISCORD_TOKEN; copy it again (Developer Portal → Bot → Reset Token)"
        )
    return f"could not connect: {exc or 'closed'}"


def _rows(client: Any, settings: Settings) -> list[Row]:
    import discord

    guilds = ", ".join(f"{g.name} ({g.id})" for g in client.guilds) or "none: invite the bot"
    rows = [
        Row("discord", True, f"logged in as {client.user}; {len(client.guilds)} guild(s): {guilds}")
    ]
    # The channels the configuration names: the allow list and those with their own settings.
    configured = list(
        dict.fromkeys([*settings.discord.permissions.channels.allow, *settings.discord.channels])
    )
    if configured:
        channels: list[Any] = [client.get_channel(cid) or cid for cid in configured]
    else:
        channels = [c for g in client.guilds for c in g.text_channels]
        rows.append(Row("channels", True, "none configured: showing every text channel"))
    need_threads = settings.discord.reply_in_thread
    for channel in channels:
        if not isinstance(channel, discord.abc.GuildChannel):
            rows.append(
                Row(
                    f"channel:{channel}",
                    False,
                    "not visible: the bot is not in its guild or "
                    "cannot see it (check the invite and the channel's permissions)",
                )
            )
            continue
        perms = channel.permissions_for(channel.guild.me)
        read = perms.view_channel and perms.read_message_history
        send = perms.view_channel and perms.send_messages
        threads = perms.create_public_threads and perms.send_messages_in_threads
        ok = read and send and (threads or not need_threads)
        detail = (
            f"#{channel.name} in {channel.guild.name}: read {_yes(read)}, send {_yes(send)}, "
            f"create threads {_yes(threads)}"
        )
        if settings.discord.reactions is not False:
            # Not needed to answer: without it the questions only get no status reactions.
            detail += f", add reactions {_yes(perms.add_reactions)}"
        if not ok:
            detail += "; grant the bot's role these in the channel's permissions"
        elif settings.discord.reactions is not False and not perms.add_reactions:
            detail += "; grant Add Reactions for status reactions on questions"
        rows.append(Row(f"channel:{channel.id}", ok, detail))
    return rows


def _yes(value: bool) -> str:
    return "yes" if value else "NO"
