"""Proves the fake Discord enforces Discord's rules against an unmodified in-process discord.py client."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import discord
import pytest
import yarl
from discord.ext import commands

from tests.fakes.discord import FakeDiscord

REPO_ROOT = Path(__file__).resolve().parents[1]


class Bot(commands.Bot):
    """A plain discord.py bot that remembers what the gateway told it."""

    def __init__(self, *, intents: discord.Intents | None = None, sync: bool = False) -> None:
        if intents is None:
            intents = discord.Intents.default()
            intents.message_content = True
        super().__init__(command_prefix="!", intents=intents)
        self.seen: list[discord.Message] = []
        self.edits: list[discord.RawMessageUpdateEvent] = []
        self.threads: list[discord.Thread] = []
        self._sync = sync

    async def setup_hook(self) -> None:
        if self._sync:
            await self.tree.sync()

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        self.edits.append(payload)

    async def on_thread_create(self, thread: discord.Thread) -> None:
        self.threads.append(thread)


@pytest.fixture
async def make_fake() -> AsyncIterator:
    """Builds started fakes and points discord.py at the latest one; restores everything after."""
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    fakes: list[FakeDiscord] = []

    async def make(**kwargs) -> FakeDiscord:
        fake = FakeDiscord(**kwargs)
        await fake.start()
        fakes.append(fake)
        discord.http.Route.BASE = fake.url + "/api/v10"
        ws = fake.url.replace("http://", "ws://")
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(ws + "/gateway")
        return fake

    yield make
    for fake in fakes:
        await fake.stop()
    discord.http.Route.BASE = old_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


@pytest.fixture
async def fake(make_fake) -> FakeDiscord:
    return await make_fake()


@contextlib.asynccontextmanager
async def running(bot: commands.Bot, fake: FakeDiscord) -> AsyncIterator[commands.Bot]:
    bot._connection.guild_ready_timeout = 0.1  # on_ready 0.1 s after GUILD_CREATE instead of 2 s
    task = asyncio.create_task(bot.start(fake.token))
    ready = asyncio.create_task(bot.wait_until_ready())
    try:
        done, _ = await asyncio.wait({task, ready}, timeout=10, return_when="FIRST_COMPLETED")
        if task in done:
            task.result()  # surfaces the login/connect error
        assert ready in done, "bot never became ready"
        yield bot
    finally:
        ready.cancel()
        await bot.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


def channel_of(bot: commands.Bot, channel_id: int) -> discord.TextChannel:
    channel = bot.get_channel(channel_id)
    assert channel is not None, "channel missing from GUILD_CREATE/CHANNEL_CREATE"
    return channel


# -- 1. content limit -------------------------------------------------------------------------


async def test_message_over_2000_chars_is_refused(fake: FakeDiscord) -> None:
    cid = fake.add_channel("limits")
    async with running(Bot(), fake) as bot:
        channel = channel_of(bot, cid)
        with pytest.raises(discord.HTTPException) as err:
            await channel.send("x" * 2001)
        assert err.value.status == 400 and err.value.code == 50035
        sent = await channel.send("x" * 2000)
    assert fake.message(sent.id)["content"] == "x" * 2000
    assert [m["content"] for m in fake.messages(cid)] == ["x" * 2000]
    assert [r.status for r in fake.requests_to("POST", f"/channels/{cid}/messages")] == [400, 200]


# -- 2. rate limits ---------------------------------------------------------------------------


async def test_shared_bucket_overflow_gets_429_and_discordpy_retries(make_fake) -> None:
    fake = await make_fake(rate_limits=True, message_bucket=(5, 1.0))
    cid = fake.add_channel("busy")
    # A second client with the same token (e.g. a second process) shares Discord's bucket but not
    # discord.py's bookkeeping, so neither can wait ahead of time: the fake must answer 429.
    other = discord.Client(intents=discord.Intents.none())
    async with running(Bot(), fake) as bot:
        await other.login(fake.token)
        try:
            ours, theirs = channel_of(bot, cid), other.get_partial_messageable(cid)
            sends = [(ours if i % 2 else theirs).send(f"m{i}") for i in range(7)]
            await asyncio.gather(*sends)
        finally:
            await other.close()
    refused = [r for r in fake.requests if r.status == 429]
    assert refused and fake.counters["429"] == len(refused) >= 1
    assert refused[0].response_headers["Via"] == "1.1 google"
    assert refused[0].response["global"] is False and refused[0].response["retry_after"] > 0
    assert refused[0].response_headers["X-RateLimit-Scope"] == "user"
    assert sorted(m["content"] for m in fake.messages(cid)) == [f"m{i}" for i in range(7)]


async def test_single_client_waits_ahead_instead_of_hitting_429(make_fake) -> None:
    fake = await make_fake(rate_limits=True, message_bucket=(5, 1.0))
    cid = fake.add_channel("calm")
    async with running(Bot(), fake) as bot:
        channel = channel_of(bot, cid)
        start = time.monotonic()
        await asyncio.gather(*(channel.send(f"m{i}") for i in range(7)))
        elapsed = time.monotonic() - start
    assert fake.counters["429"] == 0  # discord.py honours X-RateLimit-Remaining=0 by itself...
    assert elapsed >= 0.5  # ...by sleeping for the window to reset
    assert len(fake.messages(cid)) == 7


async def test_global_limit_is_flagged_global(make_fake) -> None:
    fake = await make_fake(rate_limits=True, global_limit_per_s=4)
    cids = [fake.add_channel(f"c{i}") for i in range(4)]  # + 2 login requests in the same second
    async with running(Bot(), fake) as bot:
        await asyncio.gather(*(channel_of(bot, c).send("hi") for c in cids))
    assert fake.counters["global_429"] >= 1
    refusal = next(r for r in fake.requests if r.status == 429)
    assert refusal.response["global"] is True
    assert refusal.response_headers["X-RateLimit-Global"] == "true"
    assert all(len(fake.messages(c)) == 1 for c in cids)


# -- 3. interaction deadline ------------------------------------------------------------------


class SlowView(discord.ui.View):
    def __init__(self, delay: float) -> None:
        super().__init__(timeout=None)
        self.delay = delay
        self.errors: list[Exception] = []
        self.done = asyncio.Event()

    @discord.ui.button(label="Go", custom_id="slow:go")
    async def go(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await asyncio.sleep(self.delay)
        try:
            await interaction.response.send_message("first")
            await interaction.response.send_message("second")  # discord.py refuses locally
        except discord.InteractionResponded:
            try:  # bypass discord.py's own guard to see Discord's answer
                await interaction._state.http.request(
                    discord.http.Route(
                        "POST",
                        "/interactions/{iid}/{token}/callback",
                        iid=interaction.id,
                        token=interaction.token,
                    ),
                    json={"type": 4, "data": {"content": "again"}},
                )
            except discord.HTTPException as exc:
                self.errors.append(exc)
        except discord.HTTPException as exc:
            self.errors.append(exc)
        finally:
            self.done.set()


async def test_late_button_answer_gets_unknown_interaction(make_fake) -> None:
    fake = await make_fake(interaction_deadline_s=0.5)
    cid, user = fake.add_channel("slow"), fake.add_user("clicker")
    async with running(Bot(), fake) as bot:
        view = SlowView(delay=1.0)
        sent = await channel_of(bot, cid).send("click me", view=view)
        interaction = await fake.click_button(sent.id, "slow:go", user)
        await asyncio.wait_for(view.done.wait(), 5)
    [error] = view.errors
    assert isinstance(error, discord.NotFound) and error.code == 10062
    assert interaction.status == [404] and fake.counters["interaction_expired"] == 1
    assert interaction.original() is None
    assert [m["content"] for m in fake.messages(cid)] == ["click me"]


async def test_timely_button_answer_and_double_ack(fake: FakeDiscord) -> None:
    cid, user = fake.add_channel("fast"), fake.add_user("clicker")
    async with running(Bot(), fake) as bot:
        view = SlowView(delay=0)
        sent = await channel_of(bot, cid).send("click me", view=view)
        interaction = await fake.click_button(sent.id, "slow:go", user)
        await asyncio.wait_for(view.done.wait(), 5)
    [error] = view.errors
    assert error.status == 400 and error.code == 40060
    assert interaction.status == [200, 400]
    assert interaction.original()["content"] == "first"
    assert interaction.original()["interaction_metadata"]["interacted_message_id"] == str(sent.id)
    with pytest.raises(ValueError, match="no component"):
        await fake.click_button(sent.id, "nope", user)


# -- 4. message content intent ----------------------------------------------------------------


async def test_without_message_content_intent_only_mentions_and_dms_have_content(fake) -> None:
    cid, user = fake.add_channel("quiet"), fake.add_user("talker")
    dm = fake.add_dm_channel(user)
    async with running(Bot(intents=discord.Intents.default()), fake) as bot:
        await fake.send_message(cid, user, "secret words")
        await fake.send_message(cid, user, f"<@{fake.bot_user_id}> hello bot")
        await fake.send_message(dm, user, "private words")
        await fake.wait_for(lambda: len(bot.seen) == 3, timeout=5)
    assert [m.content for m in bot.seen] == ["", f"<@{bot.user.id}> hello bot", "private words"]
    assert bot.seen[1].mentions[0].id == bot.user.id
    assert isinstance(bot.seen[2].channel, discord.DMChannel)
    assert fake.messages(cid)[0]["content"] == "secret words"  # Discord itself keeps it


# -- 5. slash commands ------------------------------------------------------------------------


def command_bot() -> Bot:
    bot = Bot(sync=True)

    @bot.tree.command(name="ask", description="Ask something")
    async def ask(interaction: discord.Interaction, question: str, times: int = 1) -> None:
        await interaction.response.send_message(f"{question} x{times}", ephemeral=True)

    @bot.tree.command(name="think", description="Defer, then answer")
    async def think(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send("thought about it")
        await interaction.edit_original_response(content="thought harder")

    return bot


async def test_synced_slash_command_answers_ephemerally(fake: FakeDiscord) -> None:
    cid, user = fake.add_channel("cmds"), fake.add_user("asker")
    async with running(command_bot(), fake):
        names = sorted(c["name"] for c in fake.commands["global"])
        assert names == ["ask", "think"]
        ask = next(c for c in fake.commands["global"] if c["name"] == "ask")
        assert [(o["name"], o["type"]) for o in ask["options"]] == [("question", 3), ("times", 4)]
        interaction = await fake.slash_command("ask", user, cid, {"question": "why", "times": 2})
        body = await interaction.wait_response()
        assert body["type"] == 4 and body["data"]["flags"] == 64
        await fake.wait_for(interaction.original)
        with pytest.raises(ValueError, match="wants"):
            await fake.slash_command("ask", user, cid, {"question": 3})
    original = interaction.original()
    assert original["content"] == "why x2" and original["flags"] & 64
    assert original["type"] == 20 and original["interaction"]["name"] == "ask"
    assert fake.messages(cid) == []  # ephemeral: nobody else sees it
    assert fake.messages(cid, include_ephemeral=True)[0]["id"] == original["id"]
    assert interaction.status == [200]


async def test_deferred_command_followup_replaces_thinking_message(fake: FakeDiscord) -> None:
    cid, user = fake.add_channel("think"), fake.add_user("asker")
    async with running(command_bot(), fake):
        interaction = await fake.slash_command("think", user, cid)
        # Answered, not only sent: the fake records a request before its latency passes.
        await fake.wait_for(lambda: any(r.status for r in fake.requests_to("PATCH", "@original")))
    assert interaction.responses[0]["type"] == 5
    [shown] = fake.messages(cid)
    assert shown["content"] == "thought harder" and not shown["flags"] & 128
    assert interaction.original()["id"] == shown["id"]


# -- 6. edits, replies, mentions ---------------------------------------------------------------


async def test_reply_edit_mentions_and_allowed_mentions(fake: FakeDiscord) -> None:
    cid, user = fake.add_channel("chat"), fake.add_user("asker")
    role = fake.add_role("mods")
    async with running(Bot(), fake) as bot:
        asked = await fake.send_message(cid, user, "hello")
        await fake.wait_for(lambda: bot.seen)
        text = f"hi <@{user}> and <@&{role}> @everyone"
        reply = await bot.seen[0].reply(text, allowed_mentions=discord.AllowedMentions.none())
        await fake.wait_for(lambda: len(bot.seen) == 2)  # real Discord echoes the bot's own send
        await reply.edit(content=f"bye <@!{user}>")
        await fake.wait_for(lambda: bot.edits)
        loud = await bot.seen[0].channel.send(f"<@{user}>")
    stored = fake.message(reply.id)
    assert stored["type"] == 19 and stored["message_reference"]["message_id"] == asked["id"]
    assert stored["referenced_message"]["content"] == "hello"
    assert stored["content"] == f"bye <@!{user}>" and stored["edited_timestamp"]
    assert [m["id"] for m in stored["mentions"]] == [str(user)]
    assert bot.seen[1].reference.message_id == int(asked["id"])
    assert bot.edits[0].message_id == reply.id
    [post] = [r for r in fake.requests_to("POST", f"/channels/{cid}/messages") if r.status == 200][
        :1
    ]
    assert post.json["allowed_mentions"]["parse"] == []
    assert fake.pings(reply.id)["users"] == [] and not fake.pings(reply.id)["everyone"]
    assert fake.pings(loud.id)["users"] == [user]  # no allowed_mentions: Discord pings
    assert fake.counters["messages_edited"] == 1


# -- other rules and routes -------------------------------------------------------------------


async def test_component_and_authorship_rules(fake: FakeDiscord) -> None:
    cid, user = fake.add_channel("rules"), fake.add_user("author")
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="a", custom_id="same"))
    view.add_item(discord.ui.Button(label="b", custom_id="same"))
    async with running(Bot(), fake) as bot:
        channel = channel_of(bot, cid)
        with pytest.raises(discord.HTTPException) as err:
            await channel.send("dupes", view=view)
        assert err.value.code == 50035
        with pytest.raises(discord.HTTPException) as err:
            await channel.send(embed=discord.Embed(description="d" * 4097))
        assert err.value.code == 50035
        theirs = await fake.send_message(cid, user, "mine")
        message = await channel.fetch_message(int(theirs["id"]))
        with pytest.raises(discord.Forbidden) as err:
            await message.edit(content="hijacked")
        assert err.value.code == 50005
        with pytest.raises(discord.NotFound):
            await bot.http.request(discord.http.Route("GET", "/no/such/route"))
    assert fake.unknown_routes == ["GET /api/v10/no/such/route"]
    assert fake.message(int(theirs["id"]))["content"] == "mine"


async def test_files_threads_typing_and_dms(fake: FakeDiscord) -> None:
    cid, user = fake.add_channel("files"), fake.add_user("friend")
    async with running(Bot(), fake) as bot:
        channel = channel_of(bot, cid)
        async with channel.typing():
            sent = await channel.send("report", file=discord.File(io.BytesIO(b"abc"), "r.txt"))
        assert await sent.attachments[0].read() == b"abc"
        thread = await sent.create_thread(name="discussion")
        await thread.send("in thread")
        await fake.wait_for(lambda: bot.threads)
        user_obj = await bot.fetch_user(user)
        await user_obj.send("psst")
    [post] = [r for r in fake.requests if r.path.endswith(f"/channels/{cid}/messages")]
    assert post.files[0]["filename"] == "r.txt" and post.files[0]["size"] == 3
    assert fake.requests_to("POST", f"/channels/{cid}/typing")[0].status == 204
    assert thread.id == sent.id and fake.messages(thread.id)[0]["content"] == "in thread"
    assert bot.threads[0].id == thread.id
    dm = fake.add_dm_channel(user)
    assert [m["content"] for m in fake.messages(dm)] == ["psst"]
    assert "guild_id" not in fake.messages(dm)[0]


async def test_gateway_resume_after_server_disconnect(fake: FakeDiscord) -> None:
    cid, user = fake.add_channel("resume"), fake.add_user("u")
    async with running(Bot(), fake) as bot:
        await fake.disconnect_bot()
        await fake.send_message(cid, user, "while away")  # buffered, replayed on RESUME
        await fake.wait_for(lambda: fake.counters["resume"] == 1, timeout=10)
        await fake.wait_for(lambda: [m.content for m in bot.seen] == ["while away"], timeout=5)
    assert fake.counters["identify"] == 1


async def test_an_invalidated_session_makes_the_client_identify_afresh(fake: FakeDiscord) -> None:
    """op 9 with d=false: discord.py identifies again (no RESUME) and gets a second READY; a
    message posted before that new session exists is never dispatched to it, only stored."""
    cid, user = fake.add_channel("reidentify"), fake.add_user("u")
    readies: list[str | None] = []
    bot = Bot()

    async def on_ready() -> None:
        readies.append(bot.ws.session_id if bot.ws else None)

    bot.add_listener(on_ready, "on_ready")
    async with running(bot, fake):
        await fake.wait_for(lambda: len(readies) == 1, timeout=10)
        fake.gateway.down = True  # the new session waits until the message below is in
        await fake.invalidate_bot_session()
        await fake.send_message(cid, user, "while no session was open")
        fake.gateway.down = False
        await fake.wait_for(lambda: len(readies) == 2, timeout=30)
        await fake.send_message(cid, user, "after the new READY")
        await fake.wait_for(lambda: bot.seen, timeout=5)
    assert fake.counters["identify"] == 2 and fake.counters["resume"] == 0
    assert readies[0] != readies[1]
    assert [m.content for m in bot.seen] == ["after the new READY"]
    assert [m["content"] for m in fake.messages(cid)] == [
        "while no session was open",
        "after the new READY",
    ]


async def test_bad_token_is_a_login_failure(fake: FakeDiscord) -> None:
    client = discord.Client(intents=discord.Intents.none())
    with pytest.raises(discord.LoginFailure):
        await client.login("wrong-token")
    await client.close()
    assert fake.requests[-1].status == 401


async def test_sitecustomize_and_standalone_process(fake: FakeDiscord) -> None:
    env = {**os.environ, **fake.bot_env()}
    code = "import discord.http as h, discord.gateway as g; print(h.Route.BASE, g.DiscordWebSocket.DEFAULT_GATEWAY)"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(child.communicate(), 30)
    ws = fake.url.replace("http://", "ws://")
    assert stdout.decode().split() == [fake.url + "/api/v10", ws + "/gateway"], stderr.decode()

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.discord", cwd=REPO_ROOT, stdout=subprocess.PIPE
    )
    try:
        url = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip()
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/_fake/state") as resp:
                state = await resp.json()
            async with session.get(url + "/api/v10/users/@me") as resp:
                assert resp.status == 401  # no Authorization header
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    assert state["url"] == url and state["channels"]


# -- forwards and embeds ----------------------------------------------------------------------


async def test_forwards_carry_a_snapshot_and_webhooks_their_embeds(fake: FakeDiscord) -> None:
    source_channel, here, user = (
        fake.add_channel("src"),
        fake.add_channel("dst"),
        fake.add_user("u"),
    )
    alert = {"title": "Build failed", "fields": [{"name": "branch", "value": "main"}]}
    async with running(Bot(), fake) as bot:
        hook = await fake.webhook_message(source_channel, "CI", embeds=[alert])
        original = await fake.send_message(
            source_channel,
            user,
            "the words",
            attachments=[
                {"filename": "a.txt", "content": "file words", "content_type": "text/plain"}
            ],
        )
        await fake.forward_message(here, user, int(original["id"]))
        await fake.wait_for(lambda: len(bot.seen) == 3, timeout=5)
    webhook, _, forward = bot.seen
    assert webhook.webhook_id is not None and webhook.author.bot
    assert webhook.embeds[0].title == "Build failed"
    assert webhook.embeds[0].fields[0].value == "main"
    assert forward.content == "" and forward.reference is not None
    assert forward.reference.type is discord.MessageReferenceType.forward
    assert forward.reference.resolved is None  # not a reply: nothing is quoted
    snapshot = forward.message_snapshots[0]
    assert snapshot.content == "the words" and snapshot.attachments[0].filename == "a.txt"
    assert hook["embeds"][0]["title"] == "Build failed"


async def test_back_dated_messages_list_in_id_order_and_threads_can_be_renamed(
    fake: FakeDiscord,
) -> None:
    cid, user = fake.add_channel("history"), fake.add_user("u")
    async with running(Bot(), fake) as bot:
        channel = channel_of(bot, cid)
        await fake.send_message(cid, user, "new")
        await fake.send_message(cid, user, "old", age_s=7200)
        listed = [m async for m in channel.history(limit=10)]  # newest first
        assert [m.content for m in listed] == ["new", "old"]
        age = discord.utils.utcnow() - listed[1].created_at
        assert 7100 < age.total_seconds() < 7300
        # The bot may rename a thread it owns; someone else's needs Manage Threads.
        sent = await channel.send("start")
        own = await sent.create_thread(name="first words")
        await own.edit(name="A Better Title")
        assert fake.world.channels[own.id].name == "A Better Title"
        other = fake.add_thread(cid, name="theirs", owner_id=user)
        fake.set_overwrite(cid, fake.bot_user_id, deny=1 << 34)  # MANAGE_THREADS
        theirs = await bot.fetch_channel(other)
        with pytest.raises(discord.Forbidden):
            await theirs.edit(name="renamed")
    assert fake.counters["channel_renames"] == 1
