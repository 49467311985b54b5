"""Channel REST routes: messages (create/edit/delete/fetch), typing, DMs, threads, reactions, CDN."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .messages import apply_edit, new_message
from .state import (
    ADD_REACTIONS,
    ATTACH_FILES,
    CREATE_PUBLIC_THREADS,
    DM,
    MANAGE_MESSAGES,
    MANAGE_THREADS,
    PUBLIC_THREAD,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    TEXT,
    THREAD_TYPES,
    VIEW_CHANNEL,
    Channel,
)
from .validation import check_message
from .wire import BODY, FAKE, UPLOADS, error, json_response, no_content

if TYPE_CHECKING:
    from .fake import FakeDiscord

API = "/api/v10"
HAS_THREAD = 1 << 5


def _fake(request: web.Request) -> FakeDiscord:
    return request.app[FAKE]


def _channel(request: web.Request) -> Channel | None:
    return _fake(request).world.channels.get(int(request.match_info["channel_id"]))


def _message(request: web.Request, channel: Channel) -> dict | None:
    msg = _fake(request).world.messages.get(int(request.match_info["message_id"]))
    if msg is None or int(msg["channel_id"]) != channel.id:
        return None
    return msg


def _missing_permission(fake: FakeDiscord, channel: Channel, needed: int) -> web.Response | None:
    if channel.type == DM:
        return None
    if fake.world.channel_permissions(fake.bot_user_id, channel.id) & needed != needed:
        return error(403, 50013, "Missing Permissions")
    return None


def _cannot_read(fake: FakeDiscord, channel: Channel, needed: int) -> web.Response | None:
    """Reading a guild channel's messages: without View Channel (or, for one message, Read
    Message History) Discord answers 403 / 50001 Missing Access, not 50013."""
    if channel.type == DM:
        return None
    if fake.world.channel_permissions(fake.bot_user_id, channel.id) & needed != needed:
        return error(403, 50001, "Missing Access")
    return None


def unknown_channel() -> web.Response:
    return error(404, 10003, "Unknown Channel")


def unknown_message() -> web.Response:
    return error(404, 10008, "Unknown Message")


async def get_channel(request: web.Request) -> web.Response:
    channel = _channel(request)
    if channel is None:
        return unknown_channel()
    return json_response(_fake(request).world.channel_payload(channel.id))


MANAGE_CHANNELS = 1 << 4


async def edit_channel(request: web.Request) -> web.Response:
    """PATCH a channel's name (the only field the bot changes): a thread's owner may rename
    it, anyone else needs Manage Threads; other channels need Manage Channels."""
    fake = _fake(request)
    channel = _channel(request)
    if channel is None:
        return unknown_channel()
    body = request[BODY] or {}
    name = body.get("name")
    if name is not None and not 1 <= len(name) <= 100:
        return error(400, 50035, "Invalid Form Body")
    owner = channel.type in THREAD_TYPES and channel.owner_id == fake.bot_user_id
    if not owner:
        needed = MANAGE_THREADS if channel.type in THREAD_TYPES else MANAGE_CHANNELS
        refused = _missing_permission(fake, channel, needed)
        if refused:
            return refused
    if name is not None and name != channel.name:
        channel.name = name
        fake.counters["channel_renames"] += 1
    payload = fake.world.channel_payload(channel.id)
    event = "THREAD_UPDATE" if channel.type in THREAD_TYPES else "CHANNEL_UPDATE"
    await fake.dispatch(event, payload)
    return json_response(payload)


async def typing(request: web.Request) -> web.Response:
    fake = _fake(request)
    channel = _channel(request)
    if channel is None:
        return unknown_channel()
    send = SEND_MESSAGES_IN_THREADS if channel.type in THREAD_TYPES else SEND_MESSAGES
    refused = _missing_permission(fake, channel, send)
    if refused:
        return refused
    fake.counters["typing"] += 1
    return no_content()


async def create_dm(request: web.Request) -> web.Response:
    fake = _fake(request)
    recipient = int((request[BODY] or {}).get("recipient_id") or 0)
    if recipient not in fake.world.users:
        return error(400, 50007, "Cannot send messages to this user")
    channel = fake.world.dm_channel_for(recipient)
    return json_response(fake.world.channel_payload(channel.id))


async def create_message(request: web.Request) -> web.Response:
    fake = _fake(request)
    channel = _channel(request)
    if channel is None:
        return unknown_channel()
    body, uploads = request[BODY] or {}, request[UPLOADS]
    send = SEND_MESSAGES_IN_THREADS if channel.type in THREAD_TYPES else SEND_MESSAGES
    refused = _missing_permission(
        fake, channel, VIEW_CHANNEL | send | (ATTACH_FILES if uploads else 0)
    )
    if refused:
        return refused
    if channel.type == DM and channel.recipient_id in fake.world.closed_dms:
        return error(403, 50007, "Cannot send messages to this user")
    problem = check_message(body, files=len(uploads))
    if problem:
        return json_response(problem, 400)
    nonce = body.get("nonce")
    if nonce is not None and body.get("enforce_nonce"):
        # Discord answers a repeated nonce of the same author with the message it already made.
        same = fake.world.find_by_nonce(channel.id, fake.bot_user_id, str(nonce))
        if same is not None:
            fake.counters["nonce_repeats"] += 1
            return json_response(same)
    ref = body.get("message_reference")
    if ref:
        target = fake.world.messages.get(int(ref.get("message_id") or 0))
        if target is None or int(target["channel_id"]) != channel.id:
            if ref.get("fail_if_not_exists", True):
                errs = {
                    "message_reference": {
                        "_errors": [
                            {
                                "code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                                "message": "Unknown message",
                            }
                        ]
                    }
                }
                return error(400, 50035, "Invalid Form Body", errs)
            body = {k: v for k, v in body.items() if k != "message_reference"}
    msg = new_message(fake.world, channel.id, fake.bot_user_id, body, uploads)
    fake.counters["messages_created"] += 1
    await fake.dispatch("MESSAGE_CREATE", msg)
    return json_response(msg)


async def edit_message(request: web.Request) -> web.Response:
    fake = _fake(request)
    channel = _channel(request)
    if channel is None:
        return unknown_channel()
    msg = _message(request, channel)
    if msg is None:
        return unknown_message()
    if int(msg["author"]["id"]) != fake.bot_user_id:
        return error(403, 50005, "Cannot edit a message authored by another user")
    body, uploads = request[BODY] or {}, request[UPLOADS]
    problem = check_message(body, files=len(uploads), existing=msg)
    if problem:
        return json_response(problem, 400)
    updated = apply_edit(fake.world, int(msg["id"]), body, uploads)
    fake.counters["messages_edited"] += 1
    await fake.dispatch("MESSAGE_UPDATE", updated)
    return json_response(updated)


async def delete_message(request: web.Request) -> web.Response:
    fake = _fake(request)
    channel = _channel(request)
    if channel is None:
        return unknown_channel()
    msg = _message(request, channel)
    if msg is None:
        return unknown_message()
    if int(msg["author"]["id"]) != fake.bot_user_id:
        if channel.type == DM:
            return error(403, 50003, "Cannot execute action on a DM channel")
        refused = _missing_permission(fake, channel, MANAGE_MESSAGES)
        if refused:
            return refused
    await fake.delete_stored_message(int(msg["id"]))
    return no_content()


async def get_message(request: web.Request) -> web.Response:
    channel = _channel(request)
    if channel is None:
        return unknown_channel()
    refused = _cannot_read(_fake(request), channel, VIEW_CHANNEL | READ_MESSAGE_HISTORY)
    if refused:
        return refused
    msg = _message(request, channel)
    return json_response(msg) if msg is not None else unknown_message()


async def history(request: web.Request) -> web.Response:
    fake = _fake(request)
    channel = _channel(request)
    if channel is None:
        return unknown_channel()
    refused = _cannot_read(fake, channel, VIEW_CHANNEL)
    if refused:
        return refused
    if _cannot_read(fake, channel, READ_MESSAGE_HISTORY):
        # Discord's documented answer without Read Message History: no messages, no error.
        return json_response([])
    limit = max(1, min(int(request.query.get("limit", 50)), 100))
    msgs = fake.world.visible_messages(channel.id)
    before, after = request.query.get("before"), request.query.get("after")
    around = request.query.get("around")
    if before:
        msgs = [m for m in msgs if int(m["id"]) < int(before)]
    if after:
        msgs = [m for m in msgs if int(m["id"]) > int(after)]
        return json_response(list(reversed(msgs[:limit])))
    if around:
        older = [m for m in msgs if int(m["id"]) <= int(around)][-(limit // 2 + 1) :]
        newer = [m for m in msgs if int(m["id"]) > int(around)][: limit - len(older)]
        return json_response(list(reversed(older + newer)))
    # Discord returns newest first.
    return json_response(list(reversed(msgs[-limit:])))


async def create_thread(request: web.Request) -> web.Response:
    fake = _fake(request)
    world = fake.world
    channel = _channel(request)
    if channel is None:
        return unknown_channel()
    body = request[BODY] or {}
    name = body.get("name") or ""
    if not 1 <= len(name) <= 100:
        errs = {
            "name": {
                "_errors": [
                    {
                        "code": "BASE_TYPE_BAD_LENGTH",
                        "message": "Must be between 1 and 100 in length.",
                    }
                ]
            }
        }
        return error(400, 50035, "Invalid Form Body", errs)
    if channel.type != TEXT:
        return error(400, 50024, "Cannot execute action on this channel type")
    refused = _missing_permission(fake, channel, CREATE_PUBLIC_THREADS)
    if refused:
        return refused
    starter = None
    if "message_id" in request.match_info:
        starter = _message(request, channel)
        if starter is None:
            return unknown_message()
        if starter["flags"] & HAS_THREAD:
            return error(400, 160004, "A thread has already been created for this message")
    thread = world.add_channel(
        name,
        int(body.get("type") or PUBLIC_THREAD),
        # A thread started from a message takes the message's id, as on Discord.
        id=int(starter["id"]) if starter else None,
        parent_id=channel.id,
        owner_id=fake.bot_user_id,
        auto_archive_duration=int(body.get("auto_archive_duration") or 1440),
    )
    payload = world.channel_payload(thread.id)
    if starter is not None:
        starter["flags"] |= HAS_THREAD
        starter["thread"] = payload
    fake.counters["threads_created"] += 1
    await fake.dispatch("THREAD_CREATE", {**payload, "newly_created": True})
    return json_response(payload, 201)


# -- reactions (the bot's own: PUT and DELETE .../reactions/{emoji}/@me) ---------------------------
# Their bucket (about one per 0.25 s per channel) is ratelimit.py's REACTION_BUCKET.


async def add_reaction(request: web.Request) -> web.Response:
    channel = _channel(request)
    if channel is None:
        return unknown_channel()
    msg = _message(request, channel)
    if msg is None:
        return unknown_message()
    fake = _fake(request)
    refused = _missing_permission(
        fake, channel, VIEW_CHANNEL | READ_MESSAGE_HISTORY | ADD_REACTIONS
    )
    if refused is not None:
        return refused
    fake.counters["reactions_added"] += 1
    emoji = request.match_info["emoji"]
    for reaction in msg["reactions"]:
        if reaction["emoji"]["name"] == emoji:
            if not reaction["me"]:
                reaction["count"] += 1
                reaction["me"] = True
            break
    else:
        msg["reactions"].append(
            {"count": 1, "me": True, "emoji": {"id": None, "name": emoji}, "burst_colors": []}
        )
    return no_content()


async def remove_own_reaction(request: web.Request) -> web.Response:
    channel = _channel(request)
    if channel is None:
        return unknown_channel()
    msg = _message(request, channel)
    if msg is None:
        return unknown_message()
    emoji = request.match_info["emoji"]
    for reaction in list(msg["reactions"]):
        if reaction["emoji"]["name"] == emoji and reaction["me"]:
            reaction["me"] = False
            reaction["count"] -= 1
            if reaction["count"] <= 0:
                msg["reactions"].remove(reaction)
    _fake(request).counters["reactions_removed"] += 1
    return no_content()


async def cdn(request: web.Request) -> web.Response:
    data = _fake(request).world.blobs.get(int(request.match_info["attachment_id"]))
    if data is None:
        return web.Response(status=404)
    return web.Response(body=data, content_type="application/octet-stream")


def add_routes(app: web.Application) -> None:
    r = app.router
    ch = f"{API}/channels/{{channel_id:\\d+}}"
    msg = f"{ch}/messages/{{message_id:\\d+}}"
    r.add_get(ch, get_channel)
    r.add_patch(ch, edit_channel)
    r.add_post(f"{ch}/typing", typing)
    r.add_post(f"{API}/users/@me/channels", create_dm)
    r.add_post(f"{ch}/messages", create_message)
    r.add_get(f"{ch}/messages", history)
    r.add_get(msg, get_message)
    r.add_patch(msg, edit_message)
    r.add_delete(msg, delete_message)
    r.add_post(f"{msg}/threads", create_thread)
    r.add_post(f"{ch}/threads", create_thread)
    r.add_put(f"{msg}/reactions/{{emoji}}/@me", add_reaction)
    r.add_delete(f"{msg}/reactions/{{emoji}}/@me", remove_own_reaction)
    r.add_get("/attachments/{channel_id}/{attachment_id:\\d+}/{filename}", cdn)
