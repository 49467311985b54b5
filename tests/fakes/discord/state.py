"""The fake's world model: users, roles, the guild, channels, messages, and their Discord payloads."""

from __future__ import annotations

import bisect
import copy
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DISCORD_EPOCH_MS = 1420070400000

# Permission bits the fake reasons about (values from Discord's documentation).
CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
CHANGE_NICKNAME = 1 << 26
USE_APPLICATION_COMMANDS = 1 << 31
MANAGE_THREADS = 1 << 34
CREATE_PUBLIC_THREADS = 1 << 35
SEND_MESSAGES_IN_THREADS = 1 << 38
# Same mask discord.py's Permissions.all() uses, so admins look exactly like "all" to the client.
ALL_PERMISSIONS = 0b0000_0000_0001_1111_0111_1111_1111_1111_1111_1111_1111_1111_1111_1111_1111_1111

DEFAULT_EVERYONE_PERMISSIONS = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | MENTION_EVERYONE
    | USE_EXTERNAL_EMOJIS
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | CREATE_PUBLIC_THREADS
    | SEND_MESSAGES_IN_THREADS
)
# What an invite link with a typical permission set would give the bot's managed role.
DEFAULT_BOT_PERMISSIONS = DEFAULT_EVERYONE_PERMISSIONS | MANAGE_MESSAGES | MANAGE_THREADS

TEXT, DM, PUBLIC_THREAD = 0, 1, 11
THREAD_TYPES = (10, 11, 12)

USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")


class Snowflakes:
    """Timestamp-based ids, strictly increasing so ordering and created_at both behave."""

    def __init__(self) -> None:
        self._last = 0
        self._past = 0
        # A test can run part of its story in the past (ids and timestamps this many seconds
        # ago), e.g. a message "posted" longer ago than the bot looks back; only moving forward
        # keeps ids increasing, as Discord's are.
        self.offset_s = 0.0

    def next(self) -> int:
        candidate = (int((time.time() + self.offset_s) * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(candidate, self._last + 1)
        return self._last

    def past(self, age_s: float) -> int:
        """An id from `age_s` seconds ago, for a message posted back then; never handed out
        twice (the low bits count up, as a worker's increment does)."""
        self._past += 1
        ms = int(time.time() * 1000 - age_s * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (self._past & 0xFFF)


def snowflake_iso(snowflake: int) -> str:
    ms = (snowflake >> 22) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def now_iso() -> str:
    return datetime.now(tz=UTC).isoformat()


@dataclass
class User:
    id: int
    name: str
    bot: bool = False
    roles: list[int] = field(default_factory=list)
    joined_at: str = ""


@dataclass
class Role:
    id: int
    name: str
    permissions: int
    position: int
    managed: bool = False
    bot_id: int | None = None


@dataclass
class Channel:
    id: int
    type: int
    name: str
    guild_id: int | None
    recipient_id: int | None = None  # DMs only
    parent_id: int | None = None  # threads only
    owner_id: int | None = None  # threads only
    auto_archive_duration: int = 1440
    created_at: str = ""
    last_message_id: int | None = None
    message_count: int = 0
    # Discord's permission_overwrites: {"id", "type" (0 role, 1 member), "allow", "deny"}.
    overwrites: list[dict] = field(default_factory=list)


@dataclass
class MessageMeta:
    """What the fake knows about a message beyond its payload."""

    allowed_mentions: dict | None = None
    pings: dict = field(default_factory=dict)
    ephemeral: bool = False
    interaction_id: int | None = None


class World:
    """Every object the fake serves, plus builders for their JSON payloads."""

    def __init__(self, bot_name: str = "FakeBot") -> None:
        self.ids = Snowflakes()
        self.users: dict[int, User] = {}
        self.roles: dict[int, Role] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, dict] = {}
        self.channel_messages: dict[int, list[int]] = {}
        self.meta: dict[int, MessageMeta] = {}
        self.blobs: dict[int, bytes] = {}  # attachment id -> bytes, served by the fake's CDN route
        # Users whose privacy settings refuse DMs from the bot: the DM channel opens, but a
        # message into it gets 403 / 50007, as on Discord.
        self.closed_dms: set[int] = set()
        self.base_url = "http://127.0.0.1"

        self.guild_id = self.ids.next()
        self.guild_name = "Fake Guild"
        # Every guild the bot is in, id -> name; the first is `guild_id`, the usual one.
        self.guilds: dict[int, str] = {self.guild_id: self.guild_name}
        # @everyone shares the guild's id, as on Discord.
        self.roles[self.guild_id] = Role(
            self.guild_id, "@everyone", DEFAULT_EVERYONE_PERMISSIONS, position=0
        )
        self.bot_user_id = self.add_user(bot_name, bot=True)
        self.bot_role_id = self.add_role(bot_name, permissions=DEFAULT_BOT_PERMISSIONS)
        role = self.roles[self.bot_role_id]
        role.managed, role.bot_id = True, self.bot_user_id
        self.users[self.bot_user_id].roles.append(self.bot_role_id)
        self.owner_id = self.add_user("owner")

    # -- creation -------------------------------------------------------------

    def add_user(self, name: str, *, roles: list[int] | tuple = (), bot: bool = False) -> int:
        uid = self.ids.next()
        for rid in roles:
            if rid not in self.roles:
                raise ValueError(f"unknown role id {rid}")
        self.users[uid] = User(uid, name, bot=bot, roles=list(roles), joined_at=now_iso())
        return uid

    def add_guild(self, name: str, *, guild_id: int | None = None) -> int:
        """Another guild the bot is in (same members); pick `guild_id` to place it on a shard."""
        gid = guild_id or self.ids.next()
        self.ids._last = max(self.ids._last, gid)  # later ids stay strictly increasing
        self.guilds[gid] = name
        self.roles[gid] = Role(gid, "@everyone", DEFAULT_EVERYONE_PERMISSIONS, position=0)
        return gid

    def add_role(self, name: str, *, permissions: int = 0) -> int:
        rid = self.ids.next()
        self.roles[rid] = Role(rid, name, permissions, position=len(self.roles))
        return rid

    def add_channel(self, name: str, type_: int = TEXT, **kw: Any) -> Channel:
        cid = kw.pop("id", None) or self.ids.next()
        guild_id = None if type_ == DM else (kw.pop("guild_id", None) or self.guild_id)
        ch = Channel(cid, type_, name, guild_id, created_at=now_iso(), **kw)
        self.channels[cid] = ch
        self.channel_messages[cid] = []
        return ch

    def dm_channel_for(self, user_id: int) -> Channel:
        for ch in self.channels.values():
            if ch.type == DM and ch.recipient_id == user_id:
                return ch
        if user_id not in self.users:
            raise KeyError(user_id)
        return self.add_channel("", DM, recipient_id=user_id)

    # -- permissions ----------------------------------------------------------

    def channel_permissions(self, user_id: int, channel_id: int) -> int:
        """Guild permissions with the channel's overwrites applied as Discord does: @everyone,
        then the member's roles together, then the member. A thread follows its parent."""
        channel = self.channels[channel_id]
        if channel.type in THREAD_TYPES and channel.parent_id in self.channels:
            channel = self.channels[channel.parent_id]
        guild_id = channel.guild_id or self.guild_id
        value = self.permissions(user_id, guild_id)
        if value == ALL_PERMISSIONS:
            return value
        by_id = {int(o["id"]): o for o in channel.overwrites}
        roles = self.users[user_id].roles
        layers = [
            [by_id[guild_id]] if guild_id in by_id else [],
            [by_id[r] for r in roles if r in by_id and by_id[r]["type"] == 0],
            [by_id[user_id]] if user_id in by_id and by_id[user_id]["type"] == 1 else [],
        ]
        for layer in layers:
            deny = allow = 0
            for overwrite in layer:
                deny |= int(overwrite["deny"])
                allow |= int(overwrite["allow"])
            value = (value & ~deny) | allow
        return value

    def permissions(self, user_id: int, guild_id: int | None = None) -> int:
        """Guild-level permissions (see channel_permissions for a channel's overwrites)."""
        user = self.users[user_id]
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        value = self.roles[guild_id or self.guild_id].permissions
        for rid in user.roles:
            value |= self.roles[rid].permissions
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    # -- payloads -------------------------------------------------------------

    def user_payload(self, user_id: int) -> dict:
        u = self.users[user_id]
        return {
            "id": str(u.id),
            "username": u.name,
            "global_name": None if u.bot else u.name,
            "discriminator": "0",
            "avatar": None,
            "bot": u.bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }

    def member_payload(self, user_id: int, *, with_user: bool = True) -> dict:
        u = self.users[user_id]
        data = {
            "roles": [str(r) for r in u.roles],
            "nick": None,
            "avatar": None,
            "banner": None,
            "joined_at": u.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user_payload(user_id)
        return data

    def role_payload(self, role: Role) -> dict:
        data = {
            "id": str(role.id),
            "name": role.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": role.position,
            "permissions": str(role.permissions),
            "managed": role.managed,
            "mentionable": False,
            "flags": 0,
        }
        if role.bot_id is not None:
            data["tags"] = {"bot_id": str(role.bot_id)}
        return data

    def channel_payload(self, channel_id: int) -> dict:
        ch = self.channels[channel_id]
        last = str(ch.last_message_id) if ch.last_message_id else None
        if ch.type == DM:
            return {
                "id": str(ch.id),
                "type": DM,
                "last_message_id": last,
                "flags": 0,
                "recipients": [self.user_payload(ch.recipient_id)],
            }
        data = {
            "id": str(ch.id),
            "type": ch.type,
            "guild_id": str(ch.guild_id),
            "name": ch.name,
            "last_message_id": last,
            "rate_limit_per_user": 0,
            "flags": 0,
            "nsfw": False,
        }
        if ch.type in THREAD_TYPES:
            data.update(
                parent_id=str(ch.parent_id),
                owner_id=str(ch.owner_id),
                message_count=ch.message_count,
                total_message_sent=ch.message_count,
                member_count=1,
                thread_metadata={
                    "archived": False,
                    "auto_archive_duration": ch.auto_archive_duration,
                    "archive_timestamp": ch.created_at,
                    "locked": False,
                    "create_timestamp": ch.created_at,
                },
            )
        else:
            overwrites = [
                {
                    "id": str(o["id"]),
                    "type": o["type"],
                    "allow": str(o["allow"]),
                    "deny": str(o["deny"]),
                }
                for o in ch.overwrites
            ]
            data.update(
                position=ch.id % 1000, permission_overwrites=overwrites, topic=None, parent_id=None
            )
        return data

    def guild_payload(self, guild_id: int | None = None) -> dict:
        guild_id = guild_id or self.guild_id
        members = [self.member_payload(uid) for uid in self.users]
        guild_channels = [c for c in self.channels.values() if c.guild_id == guild_id]
        # Each guild has its own @everyone (id = the guild's); other roles are shared.
        roles = [r for r in self.roles.values() if r.id == guild_id or r.id not in self.guilds]
        return {
            "id": str(guild_id),
            "name": self.guilds[guild_id],
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "max_members": 500000,
            "features": [],
            "emojis": [],
            "stickers": [],
            "roles": [self.role_payload(r) for r in roles],
            # GUILD_CREATE-only fields:
            "joined_at": self.users[self.bot_user_id].joined_at,
            "large": False,
            "unavailable": False,
            # Must equal len(members) or discord.py thinks the guild is not chunked.
            "member_count": len(members),
            "members": members,
            "channels": [
                self.channel_payload(c.id) for c in guild_channels if c.type not in THREAD_TYPES
            ],
            "threads": [
                self.channel_payload(c.id) for c in guild_channels if c.type in THREAD_TYPES
            ],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    # -- messages -------------------------------------------------------------

    def parse_mentions(self, content: str) -> tuple[list[int], list[int], bool]:
        users = []
        for m in USER_MENTION.finditer(content or ""):
            uid = int(m.group(1))
            if uid in self.users and uid not in users:
                users.append(uid)
        roles = []
        for m in ROLE_MENTION.finditer(content or ""):
            rid = int(m.group(1))
            if rid in self.roles and rid not in roles:
                roles.append(rid)
        everyone = "@everyone" in (content or "") or "@here" in (content or "")
        return users, roles, everyone

    def mention_payload(self, user_id: int, guild: bool) -> dict:
        data = self.user_payload(user_id)
        if guild:
            data["member"] = self.member_payload(user_id, with_user=False)
        return data

    def store_message(self, payload: dict, meta: MessageMeta) -> None:
        mid, cid = int(payload["id"]), int(payload["channel_id"])
        self.messages[mid] = payload
        self.meta[mid] = meta
        # In id order, as Discord lists them (a message back-dated with `age_s` sorts earlier).
        bisect.insort(self.channel_messages.setdefault(cid, []), mid)
        ch = self.channels[cid]
        if not meta.ephemeral:
            ch.last_message_id = mid
            ch.message_count += 1

    def find_by_nonce(self, channel_id: int, author_id: int, nonce: str) -> dict | None:
        """A recent message of this author with this nonce (Discord checks a few minutes back)."""
        for mid in reversed(self.channel_messages.get(channel_id, [])[-200:]):
            msg = self.messages[mid]
            if int(msg["author"]["id"]) == author_id and str(msg.get("nonce")) == nonce:
                return msg
        return None

    def remove_message(self, message_id: int) -> dict | None:
        payload = self.messages.pop(message_id, None)
        if payload is not None:
            self.channel_messages[int(payload["channel_id"])].remove(message_id)
        return payload

    def visible_messages(self, channel_id: int, *, include_ephemeral: bool = False) -> list[dict]:
        out = []
        for mid in self.channel_messages.get(channel_id, []):
            if include_ephemeral or not self.meta[mid].ephemeral:
                out.append(copy.deepcopy(self.messages[mid]))
        return out
