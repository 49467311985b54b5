"""Proves the fake's injected faults look to an unmodified discord.py exactly as real ones do."""

from __future__ import annotations

import asyncio

import aiohttp
import discord
import pytest

from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.state import SEND_MESSAGES
from tests.test_fake_discord import Bot, channel_of, fake, make_fake, running  # noqa: F401


async def test_dropped_connection_reaches_the_client_unchanged(fake: FakeDiscord) -> None:  # noqa: F811
    cid = fake.add_channel("drop")
    async with running(Bot(), fake) as bot:
        channel = channel_of(bot, cid)
        rule = fake.faults.drop_connection("POST", rf"/channels/{cid}/messages$")
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await channel.send("lost")
        assert fake.messages(cid) == []  # dropped before it was handled
        fake.faults.drop_connection("POST", rf"/channels/{cid}/messages$", after_handling=True)
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await channel.send("made, answer lost", nonce=42)
        # Discord answers a repeated nonce (enforce_nonce) with the message it already made.
        again = await channel.send("made, answer lost", nonce=42)
        assert [m["id"] for m in fake.messages(cid)] == [str(again.id)]
        assert rule.fired == 1


async def test_a_hung_request_is_never_answered_nor_applied(fake: FakeDiscord) -> None:  # noqa: F811
    cid = fake.add_channel("hang")
    async with running(Bot(), fake) as bot:
        sent = await channel_of(bot, cid).send("before")
        rule = fake.faults.hang("PATCH", rf"/messages/{sent.id}$")
        edit = asyncio.ensure_future(sent.edit(content="after"))
        await fake.wait_for(lambda: rule.fired == 1)
        await asyncio.sleep(0.5)
        assert not edit.done()  # held, as Discord holding it would: only a timeout ends it
        assert fake.messages(cid)[0]["content"] == "before"
        rule.released.set()
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await edit
        assert fake.messages(cid)[0]["content"] == "before"


async def test_server_errors_and_refused_sync(fake: FakeDiscord) -> None:  # noqa: F811
    cid = fake.add_channel("5xx")
    fake.faults.refuse_command_sync(fake.guild_id)
    async with running(Bot(), fake) as bot:
        sent = await channel_of(bot, cid).send("hi")
        fake.faults.server_error("PATCH", rf"/messages/{sent.id}$", status=503)
        with pytest.raises(discord.DiscordServerError):
            await sent.edit(content="edited")
        await sent.edit(content="edited")
        with pytest.raises(discord.Forbidden) as refused:
            await bot.tree.sync(guild=discord.Object(fake.guild_id))
        assert refused.value.code == 50001


async def test_denied_send_is_refused_and_seen_in_permissions(fake: FakeDiscord) -> None:  # noqa: F811
    cid = fake.add_channel("muted")
    async with running(Bot(), fake) as bot:
        await fake.deny_bot(cid, SEND_MESSAGES)
        channel = channel_of(bot, cid)
        await fake.wait_for(lambda: not channel.permissions_for(channel.guild.me).send_messages)
        with pytest.raises(discord.Forbidden) as refused:
            await channel.send("hello")
        assert refused.value.code == 50013


async def test_a_stale_client_can_click_a_button_disabled_since(fake: FakeDiscord) -> None:  # noqa: F811
    cid, user = fake.add_channel("stale"), fake.add_user("stale-clicker")
    clicked: list[discord.Interaction] = []

    class Once(discord.ui.View):
        @discord.ui.button(label="Go", custom_id="stale:go")
        async def go(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
            clicked.append(interaction)
            await interaction.response.send_message("seen", ephemeral=True)

    async with running(Bot(), fake) as bot:
        view = Once(timeout=None)
        sent = await channel_of(bot, cid).send("click me", view=view)
        before = fake.message(sent.id)
        view.go.disabled = True
        await sent.edit(content="closed", view=view)
        with pytest.raises(ValueError, match="disabled"):
            await fake.click_button(sent.id, "stale:go", user)
        late = await fake.click_button(sent.id, "stale:go", user, seen=before)
        await late.wait_response()
    # Delivered with the message as it is now, not as the stale client showed it.
    assert late.payload["message"]["content"] == "closed"
    assert clicked and clicked[0].message is not None
    assert clicked[0].message.content == "closed"
