"""Builds and edits message payloads exactly as Discord would return them, including mentions and pings."""

from __future__ import annotations

import copy
import mimetypes
from dataclasses import dataclass
from typing import Any

from .state import DM, MENTION_EVERYONE, MessageMeta, World, now_iso, snowflake_iso

SUPPRESS_EMBEDS = 1 << 2
EPHEMERAL = 1 << 6
LOADING = 1 << 7
# Flags a client may set or clear on create/edit; the rest are Discord-owned.
CLIENT_FLAGS = SUPPRESS_EMBEDS | (1 << 12) | (1 << 15)


@dataclass
class Upload:
    """One `files[n]` part of a multipart request."""

    index: int
    filename: str
    data: bytes
    content_type: str | None = None


def attachment_payload(world: World, channel_id: int, filename: str, data: bytes, **extra) -> dict:
    aid = world.ids.next()
    world.blobs[aid] = data
    url = f"{world.base_url}/attachments/{channel_id}/{aid}/{filename}"
    content_type = extra.pop("content_type", None) or mimetypes.guess_type(filename)[0]
    payload = {
        "id": str(aid),
        "filename": filename,
        "size": len(data),
        "url": url,
        "proxy_url": url,
        "content_type": content_type or "application/octet-stream",
    }
    payload.update({k: v for k, v in extra.items() if v is not None})
    return payload


def _attachments(
    world: World, channel_id: int, body: dict, uploads: list[Upload], old: list
) -> list:
    """Resolves the `attachments` array: ids of kept attachments, or indexes into files[n]."""
    by_index = {u.index: u for u in uploads}
    old_by_id = {a["id"]: a for a in old}
    if body.get("attachments") is None:
        # No explicit list: keep what was there and append every upload.
        entries = [{"id": a["id"]} for a in old] + [{"id": u.index} for u in uploads]
    else:
        entries = body["attachments"]
    out = []
    for entry in entries:
        key = str(entry.get("id"))
        if key in old_by_id:
            out.append(old_by_id[key])
        elif key.isdigit() and int(key) in by_index:
            up = by_index[int(key)]
            out.append(
                attachment_payload(
                    world,
                    channel_id,
                    entry.get("filename") or up.filename,
                    up.data,
                    content_type=up.content_type,
                    description=entry.get("description"),
                )
            )
    return out


def compute_pings(
    world: World, author_id: int, content: str, allowed: dict | None, replied_to: dict | None
) -> dict:
    """Who gets notified: mentions filtered by allowed_mentions (absent = everything pings)."""
    users, roles, everyone = world.parse_mentions(content)
    if allowed is None:
        parse = {"users", "roles", "everyone"}
        replied_user = True
        allowed = {}
    else:
        parse = set(allowed.get("parse") or [])
        replied_user = bool(allowed.get("replied_user", False))
    if "users" not in parse:
        explicit = {int(u) for u in allowed.get("users") or []}
        users = [u for u in users if u in explicit]
    if "roles" not in parse:
        explicit = {int(r) for r in allowed.get("roles") or []}
        roles = [r for r in roles if r in explicit]
    can_everyone = author_id not in world.users or bool(
        world.permissions(author_id) & MENTION_EVERYONE
    )
    everyone = everyone and "everyone" in parse and can_everyone
    replied_author = None
    if replied_to is not None:
        replied_author = int(replied_to["author"]["id"])
        if replied_user and replied_author != author_id and replied_author not in users:
            users.append(replied_author)
    return {
        "users": users,
        "roles": roles,
        "everyone": everyone,
        "replied_user": replied_author in users if replied_author else False,
    }


def _mentions_fields(world: World, payload: dict, pings: dict) -> None:
    """Discord fills mentions from the content itself; clients never parse it."""
    guild = "guild_id" in payload
    users, roles, _ = world.parse_mentions(payload["content"])
    for uid in pings["users"]:  # a pinged replied-to author shows up in mentions too
        if uid not in users:
            users.append(uid)
    payload["mentions"] = [world.mention_payload(u, guild) for u in users]
    payload["mention_roles"] = [str(r) for r in roles] if guild else []
    payload["mention_everyone"] = pings["everyone"]


def new_message(
    world: World,
    channel_id: int,
    author_id: int,
    body: dict,
    uploads: list[Upload] = (),
    *,
    msg_type: int | None = None,
    extra: dict | None = None,
    interaction_id: int | None = None,
    extra_flags: int = 0,
    age_s: float = 0,
    message_id: int | None = None,
) -> dict:
    """Creates, stores and returns a message payload (the full, unredacted view); `age_s`:
    posted that many seconds ago (its id and timestamp say so); `message_id`: a given id (a
    forum post's starter message has its thread's)."""
    ch = world.channels[channel_id]
    mid = message_id or (world.ids.past(age_s) if age_s else world.ids.next())
    content = body.get("content") or ""
    ref_in = body.get("message_reference")
    referenced = world.messages.get(int(ref_in["message_id"])) if ref_in else None
    flags = ((body.get("flags") or 0) & CLIENT_FLAGS) | extra_flags
    payload: dict[str, Any] = {
        "id": str(mid),
        "channel_id": str(channel_id),
        "author": world.user_payload(author_id),
        "content": content,
        "timestamp": snowflake_iso(mid),
        "edited_timestamp": None,
        "tts": bool(body.get("tts", False)),
        "attachments": [],
        "embeds": list(body.get("embeds") or []),
        "components": _with_component_ids(body.get("components") or []),
        "reactions": [],
        "pinned": False,
        "type": msg_type if msg_type is not None else (19 if referenced else 0),
        "flags": flags,
    }
    if ch.type != DM:
        payload["guild_id"] = str(ch.guild_id or world.guild_id)
        if not (extra or {}).get("webhook_id"):
            payload["member"] = world.member_payload(author_id, with_user=False)
    if body.get("nonce") is not None:
        payload["nonce"] = body["nonce"]
    if referenced is not None:
        payload["message_reference"] = {
            "type": 0,
            "message_id": referenced["id"],
            "channel_id": referenced["channel_id"],
            **({"guild_id": referenced["guild_id"]} if "guild_id" in referenced else {}),
        }
        ref_copy = copy.deepcopy(referenced)
        ref_copy.pop("referenced_message", None)  # Discord nests only one level deep
        payload["referenced_message"] = ref_copy
    payload["attachments"] = _attachments(world, channel_id, body, list(uploads), [])
    payload.update(extra or {})
    allowed = body.get("allowed_mentions")
    pings = compute_pings(world, author_id, content, allowed, referenced)
    _mentions_fields(world, payload, pings)
    meta = MessageMeta(
        allowed_mentions=allowed,
        pings=pings,
        ephemeral=bool(flags & EPHEMERAL),
        interaction_id=interaction_id,
    )
    world.store_message(payload, meta)
    return payload


def apply_edit(world: World, message_id: int, body: dict, uploads: list[Upload] = ()) -> dict:
    """Applies a PATCH body to a stored message in place and returns it."""
    msg = world.messages[message_id]
    if "content" in body:
        msg["content"] = body["content"] or ""
    if "embeds" in body:
        msg["embeds"] = list(body["embeds"] or [])
    if "components" in body:
        msg["components"] = _with_component_ids(body["components"] or [])
    if "attachments" in body or uploads:
        msg["attachments"] = _attachments(
            world, int(msg["channel_id"]), body, list(uploads), msg["attachments"]
        )
    if body.get("flags") is not None:
        msg["flags"] = (msg["flags"] & ~CLIENT_FLAGS) | (body["flags"] & CLIENT_FLAGS)
    msg["flags"] &= ~LOADING  # any edit resolves a deferred "thinking" message
    meta = world.meta[message_id]
    if "allowed_mentions" in body:
        meta.allowed_mentions = body["allowed_mentions"]
    # Edits only notify newly mentioned users; the fake records the resulting set.
    meta.pings = compute_pings(
        world,
        int(msg["author"]["id"]),
        msg["content"],
        meta.allowed_mentions,
        msg.get("referenced_message"),
    )
    _mentions_fields(world, msg, meta.pings)
    msg["edited_timestamp"] = now_iso()
    return msg


def _with_component_ids(components: list) -> list:
    """Discord numbers every component (`id`) when the client leaves it out."""
    components = copy.deepcopy(components)
    counter = [0]

    def walk(items: list) -> None:
        for comp in items:
            counter[0] += 1
            comp.setdefault("id", counter[0])
            walk(comp.get("components") or [])
            if isinstance(comp.get("accessory"), dict):
                counter[0] += 1
                comp["accessory"].setdefault("id", counter[0])

    walk(components)
    return components


def redact(payload: dict) -> dict:
    """The view of a bot without the MESSAGE_CONTENT intent."""
    out = copy.deepcopy(payload)
    out.update(content="", embeds=[], attachments=[], components=[])
    out.pop("poll", None)
    for snapshot in out.get("message_snapshots") or []:  # a forward's content is content too
        snapshot["message"].update(content="", embeds=[], attachments=[], components=[])
    return out


FORWARD = 1  # message_reference.type of a forward (0 is a reply)


def forward_fields(source: dict) -> dict:
    """What Discord puts on a forward of `source`: a reference of type 1 and a snapshot of the
    message (content, embeds, attachments; no author). No `referenced_message`: a forward is
    not a reply, and its snapshot is all a reader gets (the source may be out of its sight)."""
    snapshot = {
        key: copy.deepcopy(source.get(key, default))
        for key, default in (
            ("type", 0),
            ("content", ""),
            ("embeds", []),
            ("attachments", []),
            ("timestamp", None),
            ("edited_timestamp", None),
            ("flags", 0),
            ("mentions", []),
            ("mention_roles", []),
            ("components", []),
        )
    }
    reference = {
        "type": FORWARD,
        "message_id": source["id"],
        "channel_id": source["channel_id"],
        **({"guild_id": source["guild_id"]} if "guild_id" in source else {}),
    }
    return {"message_reference": reference, "message_snapshots": [{"message": snapshot}]}


def find_component(payload: dict, custom_id: str) -> dict | None:
    def walk(items: list) -> dict | None:
        for comp in items:
            if comp.get("custom_id") == custom_id:
                return comp
            found = walk(comp.get("components") or [])
            if found is None and isinstance(comp.get("accessory"), dict):
                found = walk([comp["accessory"]])
            if found is not None:
                return found
        return None

    return walk(payload.get("components") or [])
