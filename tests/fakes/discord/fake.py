"""FakeDiscord: the public face tests use to run the fake, act as users, and inspect what Discord shows."""

from __future__ import annotations

import asyncio
import base64
import collections
import copy
import inspect
import logging
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import web

from . import channels, control, forums, rest, webhooks
from .faults import Faults
from .gateway import Gateway
from .interactions import Interaction, command_payload, component_payload, modal_submit_payload
from .messages import attachment_payload, forward_fields, new_message
from .ratelimit import RateLimiter
from .state import PUBLIC_THREAD, TEXT, World
from .wire import FAKE, RecordedRequest

log = logging.getLogger("fake_discord")
SITECUSTOMIZE_DIR = str(Path(__file__).with_name("sitecustomize"))
# A request's round trip to Discord: loopback answers at once, the real API never does.
NETWORK_LATENCY_S = 0.02
IS_VOICE_MESSAGE = 1 << 13


class FakeDiscord:
    """Discord as a bot meets it: rate limits and a network round trip are on unless a test says
    why it wants a kinder Discord (`rate_limits=False`, `latency_s=0`)."""

    # Every fake made in this process, so the after-test rules (tests/e2e/rules.py) can check
    # each one a test used, its own bots' included.
    made: ClassVar[weakref.WeakSet[FakeDiscord]] = weakref.WeakSet()

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        rate_limits: bool = True,
        latency_s: float = NETWORK_LATENCY_S,
        interaction_deadline_s: float = 3.0,
        message_bucket: tuple[int, float] = (5, 5.0),
        global_limit_per_s: int = 50,
        privileged_intents: bool = True,
    ) -> None:
        self.token = token
        self.latency_s = latency_s
        # False: the portal has Message Content and Server Members off; asking for them is 4014.
        self.privileged_intents = privileged_intents
        self.interaction_deadline_s = interaction_deadline_s
        self.interaction_token_lifetime_s = 15 * 60.0
        self.ratelimiter = RateLimiter(
            enabled=rate_limits,
            message_bucket=message_bucket,
            global_limit_per_s=global_limit_per_s,
        )
        self.world = World()
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self.unknown_routes: list[str] = []
        self.commands: dict[str | int, list[dict]] = {}
        self.counters: collections.Counter = collections.Counter()
        self.interactions: dict[int, Interaction] = {}
        self.interactions_by_token: dict[str, Interaction] = {}
        self.ready = asyncio.Event()
        self.gateway = Gateway(self)
        self._pending: set[asyncio.Task] = set()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        FakeDiscord.made.add(self)

    # -- lifecycle ------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(middlewares=[rest.make_middleware(self)], client_max_size=64 * 2**20)
        app[FAKE] = self
        app.router.add_get("/gateway", self.gateway.handle)
        rest.add_routes(app)
        channels.add_routes(app)
        webhooks.add_routes(app)
        control.add_routes(app)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        real_host, real_port = self._runner.addresses[0][:2]
        self._url = f"http://{real_host}:{real_port}"
        self.world.base_url = self._url

    async def stop(self) -> None:
        self.faults.release_hung()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("FakeDiscord.start() has not run yet")
        return self._url

    def bot_env(self) -> dict[str, str]:
        return {"FAKE_DISCORD_URL": self.url, "PYTHONPATH": SITECUSTOMIZE_DIR}

    # -- world shortcuts ------------------------------------------------------

    @property
    def bot_user_id(self) -> int:
        return self.world.bot_user_id

    @property
    def guild_id(self) -> int:
        return self.world.guild_id

    @property
    def bot_role_id(self) -> int:
        return self.world.bot_role_id

    @property
    def owner_id(self) -> int:
        return self.world.owner_id

    def add_user(self, name: str, *, roles: list[int] | tuple = (), bot: bool = False) -> int:
        uid = self.world.add_user(name, roles=roles, bot=bot)
        for guild_id in self.world.guilds:  # the fake's users are members of every guild
            self._dispatch_soon(
                "GUILD_MEMBER_ADD", {**self.world.member_payload(uid), "guild_id": str(guild_id)}
            )
        return uid

    def add_role(self, name: str, *, permissions: int = 0) -> int:
        return self.world.add_role(name, permissions=permissions)

    def add_channel(self, name: str = "chan", *, guild_id: int | None = None) -> int:
        channel = self.world.add_channel(name, TEXT, guild_id=guild_id)
        self._dispatch_soon("CHANNEL_CREATE", self.world.channel_payload(channel.id))
        return channel.id

    async def deny_bot(self, channel_id: int, permissions: int) -> None:
        """A moderator denies the bot permissions in a channel (a member overwrite): requests
        needing them get 403 / 50013, and CHANNEL_UPDATE tells the client."""
        channel = self.world.channels[channel_id]
        channel.overwrites = [o for o in channel.overwrites if o["id"] != self.bot_user_id]
        channel.overwrites.append(
            {"id": self.bot_user_id, "type": 1, "allow": 0, "deny": permissions}
        )
        await self.dispatch("CHANNEL_UPDATE", self.world.channel_payload(channel_id))

    def add_guild(self, name: str, *, shard: tuple[int, int] | None = None) -> int:
        """A guild the bot is in, before the bot connects. `shard=(id, count)`: an id that
        Discord routes to that shard ((guild_id >> 22) % count == id)."""
        guild_id = None
        if shard is not None:
            shard_id, count = shard
            ms = (self.world.ids.next() >> 22) + 1
            ms += (shard_id - ms) % count
            guild_id = ms << 22
        return self.world.add_guild(name, guild_id=guild_id)

    def set_overwrite(
        self, channel_id: int, target_id: int, *, allow: int = 0, deny: int = 0
    ) -> None:
        """A permission overwrite on a channel for a role (or @everyone: the guild id) or a
        member; the fake enforces it on the bot's requests as Discord does."""
        channel = self.world.channels[channel_id]
        kind = 1 if target_id in self.world.users else 0
        channel.overwrites = [o for o in channel.overwrites if o["id"] != target_id]
        channel.overwrites.append({"id": target_id, "type": kind, "allow": allow, "deny": deny})
        self._dispatch_soon("CHANNEL_UPDATE", self.world.channel_payload(channel_id))

    def add_thread(self, parent_id: int, name: str = "thread", owner_id: int | None = None) -> int:
        """A public thread someone (the guild's owner unless `owner_id`) started in the text
        channel `parent_id` (THREAD_CREATE tells the bot; one made before the bot connects comes
        in its guild's `threads`)."""
        parent = self.world.channels[parent_id]
        thread = self.world.add_channel(
            name,
            PUBLIC_THREAD,
            guild_id=parent.guild_id,
            parent_id=parent_id,
            owner_id=owner_id or self.world.owner_id,
            auto_archive_duration=1440,
        )
        payload = self.world.channel_payload(thread.id)
        self._dispatch_soon("THREAD_CREATE", {**payload, "newly_created": True})
        return thread.id

    def add_forum(self, name: str = "forum") -> int:
        return forums.add_forum(self, name)

    async def forum_post(self, forum_id: int, author_id: int, title: str, content: str) -> dict:
        """A user opens a post in a forum; returns its starter message (its id is the post's)."""
        return await forums.post(self, forum_id, author_id, title, content)

    def add_dm_channel(self, user_id: int) -> int:
        return self.world.dm_channel_for(user_id).id

    def close_dms(self, user_id: int, closed: bool = True) -> None:
        """The user turns off DMs from server members: the bot's messages to them get 50007."""
        (self.world.closed_dms.add if closed else self.world.closed_dms.discard)(user_id)

    # -- dispatch -------------------------------------------------------------

    def _dispatch_soon(self, event: str, data: dict) -> None:
        """For sync helpers; later dispatches wait for these so event order is kept."""
        if not self.gateway.sessions:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self.gateway.dispatch(event, data))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def dispatch(self, event: str, data: dict) -> None:
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        await self.gateway.dispatch(event, data)

    async def delete_stored_message(self, message_id: int) -> None:
        payload = self.world.remove_message(message_id)
        if payload is None:
            return
        self.counters["messages_deleted"] += 1
        if self.world.meta[message_id].ephemeral:
            return
        event = {"id": payload["id"], "channel_id": payload["channel_id"]}
        if "guild_id" in payload:
            event["guild_id"] = payload["guild_id"]
        await self.dispatch("MESSAGE_DELETE", event)

    async def disconnect_bot(self) -> None:
        await self.gateway.disconnect()

    async def invalidate_bot_session(self) -> None:
        """The bot's gateway session ends for good (op 9, d=false): it identifies afresh and
        gets a new READY; what happens meanwhile reaches it only through REST."""
        await self.gateway.invalidate()

    # -- acting as users ------------------------------------------------------

    async def send_message(
        self,
        channel_id: int,
        author_id: int,
        content: str,
        *,
        reply_to: int | None = None,
        ping_reply: bool = True,
        attachments: list[dict] | None = None,
        embeds: list[dict] | None = None,
        extra: dict | None = None,
        age_s: float = 0,
    ) -> dict:
        """attachments: [{"filename": ..., "content": bytes|str, "content_type": ...}];
        `age_s`: a message posted that long ago (older id and timestamp; the bot still gets it
        now, as after a reconnect).
        embeds: Discord embed objects (a bot's or webhook's message, or a link preview).
        `ping_reply=False`: a reply with the client's @ON switched off, so the replied-to author
        is not pinged and not in `mentions`."""
        if channel_id not in self.world.channels:
            raise ValueError(f"unknown channel {channel_id}")
        if author_id not in self.world.users:
            raise ValueError(f"unknown user {author_id}")
        body: dict[str, Any] = {"content": content, "embeds": embeds or []}
        if reply_to is not None:
            if reply_to not in self.world.messages:
                raise ValueError(f"cannot reply to unknown message {reply_to}")
            body["message_reference"] = {"message_id": str(reply_to)}
            if not ping_reply:
                body["allowed_mentions"] = {
                    "parse": ["users", "roles", "everyone"],
                    "replied_user": False,
                }
        msg = new_message(self.world, channel_id, author_id, body, extra=extra, age_s=age_s)
        for att in attachments or []:
            data = att.get("content", b"")
            data = data.encode() if isinstance(data, str) else bytes(data)
            msg["attachments"].append(
                attachment_payload(
                    self.world,
                    channel_id,
                    att["filename"],
                    data,
                    content_type=att.get("content_type"),
                    # Discord's own fields of some attachments (a voice message's duration_secs
                    # and waveform), as Discord sends them.
                    **{
                        k: v
                        for k, v in att.items()
                        if k not in ("filename", "content", "content_type")
                    },
                )
            )
        self.counters["user_messages"] += 1
        await self.dispatch("MESSAGE_CREATE", msg)
        return copy.deepcopy(msg)

    async def send_voice_message(
        self,
        channel_id: int,
        author_id: int,
        audio: bytes,
        *,
        duration_secs: float,
        reply_to: int | None = None,
    ) -> dict:
        """A voice message as Discord's clients post one: flag IS_VOICE_MESSAGE (1 << 13), no
        content (Discord refuses text on one, so no mention either), one `voice-message.ogg`
        (audio/ogg) with its `duration_secs` and a base64 `waveform`, served from the CDN."""
        waveform = base64.b64encode(bytes(range(0, 256, 4))).decode()
        voice = {
            "filename": "voice-message.ogg",
            "content": audio,
            "content_type": "audio/ogg",
            "duration_secs": duration_secs,
            "waveform": waveform,
        }
        return await self.send_message(
            channel_id,
            author_id,
            "",
            reply_to=reply_to,
            attachments=[voice],
            extra={"flags": IS_VOICE_MESSAGE},
        )

    async def forward_message(self, channel_id: int, author_id: int, source_id: int) -> dict:
        """A user forwards message `source_id` (from any channel) into `channel_id`: an empty
        message whose reference has type 1 and whose snapshot carries the content."""
        source = self.world.messages.get(int(source_id))
        if source is None:
            raise ValueError(f"cannot forward unknown message {source_id}")
        return await self.send_message(channel_id, author_id, "", extra=forward_fields(source))

    async def webhook_message(
        self, channel_id: int, name: str, content: str = "", *, embeds: list[dict] | None = None
    ) -> dict:
        """A webhook (a CI alert, a feed) posts in the channel: a bot author, no member."""
        author = self.world.add_user(name, bot=True)  # a webhook is no member: no MEMBER_ADD
        extra = {"webhook_id": str(author)}
        return await self.send_message(channel_id, author, content, embeds=embeds, extra=extra)

    async def _start_interaction(
        self, payload: dict, kind: str, message_id: int | None
    ) -> Interaction:
        inter = Interaction(self, payload, kind, message_id)
        self.interactions[inter.id] = inter
        self.interactions_by_token[inter.token] = inter
        self.counters[f"interactions_{kind}"] += 1
        await self.dispatch("INTERACTION_CREATE", payload)
        inter.created = time.monotonic()  # the deadline runs from delivery
        return inter

    async def click_button(
        self, message_id: int, custom_id: str, user_id: int, *, seen: dict | None = None
    ) -> Interaction:
        """A click; `seen` is an older copy of the message a stale client still shows (its
        buttons may have been edited or disabled since), see `component_payload`."""
        payload = component_payload(self, int(message_id), custom_id, user_id, seen=seen)
        return await self._start_interaction(payload, "component", int(message_id))

    async def choose(
        self, message_id: int, custom_id: str, user_id: int, values: list[str]
    ) -> Interaction:
        """Picks values in a select menu (any select type)."""
        payload = component_payload(self, int(message_id), custom_id, user_id, values=values)
        return await self._start_interaction(payload, "component", int(message_id))

    async def submit_modal(
        self, opened: Interaction, values: dict[str, str], user_id: int | None = None
    ) -> Interaction:
        """Fills in and submits the modal the bot opened in answer to `opened` (MODAL_SUBMIT)."""
        user = user_id if user_id is not None else int(_user_of(opened.payload)["id"])
        payload = modal_submit_payload(self, opened, user, values)
        return await self._start_interaction(payload, "modal_submit", opened.message_id)

    async def slash_command(
        self, name: str, user_id: int, channel_id: int, options: dict | None = None
    ) -> Interaction:
        payload = command_payload(self, name, user_id, channel_id, options or {})
        return await self._start_interaction(payload, "command", None)

    # -- observing ------------------------------------------------------------

    def messages(self, channel_id: int, *, include_ephemeral: bool = False) -> list[dict]:
        return self.world.visible_messages(channel_id, include_ephemeral=include_ephemeral)

    def message(self, message_id: int | str) -> dict | None:
        msg = self.world.messages.get(int(message_id))
        return copy.deepcopy(msg) if msg is not None else None

    def attachment_data(self, attachment: dict) -> bytes:
        """The bytes of an attachment on a message (as uploaded in a multipart `files[n]`)."""
        return self.world.blobs[int(attachment["id"])]

    def pings(self, message_id: int | str) -> dict:
        """Who the message notifies after allowed_mentions: {"users", "roles", "everyone", ...}."""
        meta = self.world.meta[int(message_id)]
        return {**copy.deepcopy(meta.pings), "allowed_mentions": meta.allowed_mentions}

    def requests_to(self, method: str, path_contains: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method.upper() and path_contains in r.path]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            if time.monotonic() >= deadline:
                try:
                    source = inspect.getsource(predicate).strip()
                except (OSError, TypeError):
                    source = repr(predicate)
                recent = "\n  ".join(
                    f"{r.method} {r.path} -> {r.status}" for r in self.requests[-8:]
                )
                raise TimeoutError(
                    f"condition not met within {timeout}s: {source}\n"
                    f"last REST requests:\n  {recent or '(none)'}\n"
                    f"counters: {dict(self.counters)}"
                )
            await asyncio.sleep(0.01)


def _user_of(payload: dict) -> dict:
    return (payload.get("member") or {}).get("user") or payload["user"]
