"""A small HTTP control API (/_fake/...) so a fake running as its own process can be driven and inspected."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .wire import FAKE, json_response

if TYPE_CHECKING:
    from .fake import FakeDiscord

PREFIX = "/_fake"


def _fake(request: web.Request) -> FakeDiscord:
    return request.app[FAKE]


async def state(request: web.Request) -> web.Response:
    fake = _fake(request)
    world = fake.world
    return json_response(
        {
            "url": fake.url,
            "token": fake.token,
            "guild_id": fake.guild_id,
            "bot_user_id": fake.bot_user_id,
            "bot_role_id": fake.bot_role_id,
            "owner_id": fake.owner_id,
            "ready": fake.ready.is_set(),
            "users": {str(u.id): u.name for u in world.users.values()},
            "channels": [world.channel_payload(c) for c in world.channels],
            "commands": {str(k): v for k, v in fake.commands.items()},
            "counters": dict(fake.counters),
            "unknown_routes": fake.unknown_routes,
        }
    )


async def add_user(request: web.Request) -> web.Response:
    body = await request.json()
    uid = _fake(request).add_user(
        body["name"], roles=body.get("roles", ()), bot=body.get("bot", False)
    )
    return json_response({"id": uid})


async def add_channel(request: web.Request) -> web.Response:
    body = await request.json()
    fake = _fake(request)
    if "user_id" in body:
        return json_response({"id": fake.add_dm_channel(int(body["user_id"]))})
    return json_response({"id": fake.add_channel(body.get("name", "chan"))})


async def send_message(request: web.Request) -> web.Response:
    body = await request.json()
    msg = await _fake(request).send_message(
        int(body["channel_id"]),
        int(body["author_id"]),
        body.get("content", ""),
        reply_to=int(body["reply_to"]) if body.get("reply_to") else None,
    )
    return json_response(msg)


async def list_messages(request: web.Request) -> web.Response:
    cid = int(request.match_info["channel_id"])
    return json_response(_fake(request).messages(cid, include_ephemeral=True))


def _interaction_view(inter) -> dict:
    return {
        "id": inter.id,
        "token": inter.token,
        "kind": inter.kind,
        "responses": inter.responses,
        "status": inter.status,
        "original": inter.original(),
        "followups": inter.followups,
    }


async def click(request: web.Request) -> web.Response:
    body = await request.json()
    inter = await _fake(request).click_button(
        int(body["message_id"]), body["custom_id"], int(body["user_id"])
    )
    return json_response(_interaction_view(inter))


async def slash(request: web.Request) -> web.Response:
    body = await request.json()
    inter = await _fake(request).slash_command(
        body["name"], int(body["user_id"]), int(body["channel_id"]), body.get("options") or {}
    )
    return json_response(_interaction_view(inter))


async def get_interaction(request: web.Request) -> web.Response:
    inter = _fake(request).interactions.get(int(request.match_info["interaction_id"]))
    if inter is None:
        return json_response({"message": "unknown interaction"}, 404)
    return json_response(_interaction_view(inter))


async def requests_log(request: web.Request) -> web.Response:
    """`?since=N` skips the first N records, so a poller reads only what is new. `t` is when
    the request arrived (time.monotonic, one clock for all processes on the machine);
    `response_id` is the id of the object the request created, such as a new message."""
    since = int(request.query.get("since", "0"))
    fake = _fake(request)
    return json_response(
        [
            {
                "index": since + n,
                "method": r.method,
                "path": r.path,
                "status": r.status,
                "json": r.json,
                "t": r.t,
                "response_id": r.response.get("id") if isinstance(r.response, dict) else None,
            }
            for n, r in enumerate(fake.requests[since:])
        ]
    )


async def add_fault(request: web.Request) -> web.Response:
    """{"kind": "drop" | "status" | "refuse_sync", "method", "path", "times", ...}."""
    body = await request.json()
    faults = _fake(request).faults
    kind = body.get("kind")
    if kind == "drop":
        faults.drop_connection(
            body["method"],
            body["path"],
            int(body.get("times", 1)),
            after_handling=bool(body.get("after_handling")),
        )
    elif kind == "status":
        faults.server_error(
            body["method"], body["path"], int(body.get("times", 1)), int(body.get("status", 503))
        )
    elif kind == "refuse_sync":
        faults.refuse_command_sync(int(body["guild_id"]))
    else:
        return json_response({"message": f"unknown fault kind {kind!r}"}, 400)
    return json_response({"ok": True})


async def delete_message(request: web.Request) -> web.Response:
    """A moderator deletes a message (MESSAGE_DELETE is dispatched)."""
    await _fake(request).delete_stored_message(int(request.match_info["message_id"]))
    return json_response({"ok": True})


async def deny_bot(request: web.Request) -> web.Response:
    body = await request.json()
    await _fake(request).deny_bot(int(request.match_info["channel_id"]), int(body["permissions"]))
    return json_response({"ok": True})


async def disconnect(request: web.Request) -> web.Response:
    await _fake(request).disconnect_bot()
    return json_response({"ok": True})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{PREFIX}/state", state)
    r.add_post(f"{PREFIX}/users", add_user)
    r.add_post(f"{PREFIX}/channels", add_channel)
    r.add_post(f"{PREFIX}/messages", send_message)
    r.add_get(f"{PREFIX}/channels/{{channel_id:\\d+}}/messages", list_messages)
    r.add_post(f"{PREFIX}/click", click)
    r.add_post(f"{PREFIX}/slash", slash)
    r.add_get(f"{PREFIX}/interactions/{{interaction_id:\\d+}}", get_interaction)
    r.add_get(f"{PREFIX}/requests", requests_log)
    r.add_post(f"{PREFIX}/disconnect", disconnect)
    r.add_post(f"{PREFIX}/faults", add_fault)
    r.add_delete(f"{PREFIX}/messages/{{message_id:\\d+}}", delete_message)
    r.add_post(f"{PREFIX}/channels/{{channel_id:\\d+}}/deny", deny_bot)
