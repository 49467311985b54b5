"""The gateway websocket: HELLO/IDENTIFY/READY/RESUME, heartbeats, and per-session dispatch with intents."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .messages import redact

if TYPE_CHECKING:
    from .fake import FakeDiscord

log = logging.getLogger("fake_discord.gateway")

HEARTBEAT_INTERVAL_MS = 41250
ACK_DELAY_S = 0.02
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
DIRECT_MESSAGES = 1 << 12
MESSAGE_CONTENT = 1 << 15
# Events that need an intent; anything else (INTERACTION_CREATE, RESUMED...) always goes out.
EVENT_INTENTS = {
    "CHANNEL_CREATE": GUILDS,
    "THREAD_CREATE": GUILDS,
    "GUILD_CREATE": GUILDS,
    "GUILD_MEMBER_ADD": GUILD_MEMBERS,
}
PRESENCES = 1 << 8
PRIVILEGED = GUILD_MEMBERS | PRESENCES | MESSAGE_CONTENT
MESSAGE_EVENTS = ("MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE")
# Application flags saying the privileged intents are enabled in the (imaginary) developer portal.
APP_FLAGS = (1 << 13) | (1 << 15) | (1 << 19)
REPLAY_BUFFER = 2000


@dataclass
class Session:
    """Survives socket drops so a RESUME can replay what the client missed."""

    id: str
    intents: int
    shard: list[int] | None
    seq: int = 0
    ws: web.WebSocketResponse | None = None
    sent: deque = field(default_factory=lambda: deque(maxlen=REPLAY_BUFFER))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def owns_guild(self, guild_id: int) -> bool:
        if not self.shard:
            return True
        shard_id, count = self.shard
        return (guild_id >> 22) % count == shard_id


class Gateway:
    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.sessions: dict[str, Session] = {}
        self.sockets: set[web.WebSocketResponse] = set()
        self._server_closed: set[web.WebSocketResponse] = set()
        # An outage: new connections are refused (503 on the handshake) until this is False.
        self.down = False

    @property
    def ws_url(self) -> str:
        return self.fake.url.replace("http://", "ws://", 1) + "/gateway"

    def connected(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.ws is not None and not s.ws.closed]

    # -- dispatch -------------------------------------------------------------

    def _view(self, session: Session, event: str, data: dict) -> dict | None:
        """What this session may see of an event, or None if its intents exclude it."""
        need = EVENT_INTENTS.get(event)
        if need and not session.intents & need:
            return None
        guild_id = data.get("guild_id") or (data.get("id") if event == "GUILD_CREATE" else None)
        if guild_id is not None and not session.owns_guild(int(guild_id)):
            return None
        if guild_id is None and session.shard and session.shard[0] != 0:
            return None  # DMs go to shard 0
        if event not in MESSAGE_EVENTS:
            return data
        if not session.intents & (GUILD_MESSAGES if guild_id else DIRECT_MESSAGES):
            return None
        if event == "MESSAGE_DELETE" or session.intents & MESSAGE_CONTENT:
            return data
        view = data if self._content_exempt(data) else redact(data)
        ref = data.get("referenced_message")
        if ref and not self._content_exempt(ref):
            view = {
                **view,
                "referenced_message": redact(ref),
            }  # a quoted message obeys the rule too
        return view

    def _content_exempt(self, message: dict) -> bool:
        """Discord keeps content for DMs, the bot's own messages, and messages mentioning it."""
        bot_id = str(self.fake.bot_user_id)
        return (
            "guild_id" not in message
            or message.get("author", {}).get("id") == bot_id
            or any(m["id"] == bot_id for m in message.get("mentions", []))
        )

    async def dispatch(self, event: str, data: dict) -> None:
        for session in list(self.sessions.values()):
            view = self._view(session, event, data)
            if view is not None:
                await self._send_dispatch(session, event, view)

    async def _send_dispatch(self, session: Session, event: str, data: Any) -> None:
        async with session.lock:  # keeps sequence numbers in send order
            session.seq += 1
            frame = json.dumps({"op": 0, "t": event, "s": session.seq, "d": data})
            session.sent.append((session.seq, frame))
            if session.ws is not None and not session.ws.closed:
                try:
                    await session.ws.send_str(frame)
                except ConnectionError:
                    log.debug("socket gone while sending %s; kept for RESUME", event)

    # -- connection handling --------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.down:
            return web.Response(status=503, text="gateway unavailable")
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self.sockets.add(ws)
        session: Session | None = None
        try:
            await ws.send_json({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                payload = json.loads(msg.data)
                op, d = payload.get("op"), payload.get("d")
                if op == 1:
                    # A real ACK takes a network round trip; an instant one races discord.py's
                    # keep-alive thread, which then logs a bogus "Can't keep up" warning.
                    await asyncio.sleep(ACK_DELAY_S)
                    await ws.send_json({"op": 11})
                elif op == 2:
                    if session is not None:
                        await ws.close(code=4005, message=b"Already authenticated.")
                        break
                    session = await self._identify(ws, d or {})
                elif op == 6:
                    session = await self._resume(ws, d or {})
                elif session is None:
                    await ws.close(code=4003, message=b"Not authenticated.")
                    break
                elif op == 8:
                    await self._member_chunk(session, d or {})
                elif op in (3, 4):
                    log.debug("ignoring gateway op %s", op)
                else:
                    await ws.close(code=4001, message=b"Unknown opcode.")
                    break
        finally:
            self.sockets.discard(ws)
            if session is not None and session.ws is ws:
                session.ws = None
                # A client's clean close (1000/1001) ends its session on Discord: no RESUME.
                if ws.close_code in (1000, 1001) and ws not in self._server_closed:
                    self.sessions.pop(session.id, None)
            self._server_closed.discard(ws)
            if not self.connected():
                self.fake.ready.clear()
        return ws

    async def _identify(self, ws: web.WebSocketResponse, d: dict) -> Session | None:
        if d.get("token") != self.fake.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        intents = int(d.get("intents") or 0)
        if not self.fake.privileged_intents and intents & PRIVILEGED:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return None
        self.fake.counters["identify"] += 1
        session = Session(secrets.token_hex(16), int(d.get("intents") or 0), d.get("shard"))
        self.sessions[session.id] = session
        session.ws = ws
        world = self.fake.world
        # Discord routes each guild to shard (guild_id >> 22) % shard_count.
        owned = [gid for gid in world.guilds if session.owns_guild(gid)]
        ready = {
            "v": 10,
            "user": {
                **world.user_payload(world.bot_user_id),
                "verified": True,
                "mfa_enabled": False,
            },
            "guilds": [{"id": str(gid), "unavailable": True} for gid in owned],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.ws_url,
            "application": {"id": str(world.bot_user_id), "flags": APP_FLAGS},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "_trace": ["fake-discord"],
        }
        if session.shard:
            ready["shard"] = session.shard
        await self._send_dispatch(session, "READY", ready)
        if session.intents & GUILDS:
            for gid in owned:
                await self._send_dispatch(session, "GUILD_CREATE", world.guild_payload(gid))
        self.fake.ready.set()
        return session

    async def _resume(self, ws: web.WebSocketResponse, d: dict) -> Session | None:
        session = self.sessions.get(d.get("session_id") or "")
        if session is None or d.get("token") != self.fake.token:
            # d=false: the client must IDENTIFY afresh (discord.py waits ~1-5 s first).
            await ws.send_json({"op": 9, "d": False})
            return None
        self.fake.counters["resume"] += 1
        async with session.lock:
            session.ws = ws
            last = int(d.get("seq") or 0)
            for seq, frame in list(session.sent):
                if seq > last:
                    await ws.send_str(frame)
        await self._send_dispatch(session, "RESUMED", {"_trace": ["fake-discord"]})
        self.fake.ready.set()
        return session

    async def _member_chunk(self, session: Session, d: dict) -> None:
        world = self.fake.world
        members = [world.member_payload(uid) for uid in world.users]
        wanted = d.get("user_ids")
        if wanted:
            wanted = {int(u) for u in (wanted if isinstance(wanted, list) else [wanted])}
            members = [m for m in members if int(m["user"]["id"]) in wanted]
        chunk = {
            "guild_id": str(d.get("guild_id") or world.guild_id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if d.get("nonce"):
            chunk["nonce"] = d["nonce"]
        await self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def disconnect(self, code: int = 4000) -> None:
        """Server-side close with a resumable code; sessions stay for RESUME."""
        for ws in list(self.sockets):
            self._server_closed.add(ws)
            await ws.close(code=code, message=b"fake-discord disconnect")

    async def invalidate(self) -> None:
        """Discord ends every session (op 9 with d=false, as after a session it could not keep):
        the client must IDENTIFY afresh, and nothing dispatched until it has is ever sent to it
        (there is no session left to RESUME and replay)."""
        for session in list(self.sessions.values()):
            del self.sessions[session.id]
            ws = session.ws
            if ws is not None and not ws.closed:
                self._server_closed.add(ws)
                try:
                    await ws.send_json({"op": 9, "d": False})
                except ConnectionError:
                    log.debug("socket gone while invalidating its session")

    async def close_all(self) -> None:
        for ws in list(self.sockets):
            self._server_closed.add(ws)
            await ws.close(code=1001, message=b"server shutting down")
