"""Interaction callback and interaction-webhook routes (@original, followups), with Discord's timing rules."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .interactions import Interaction, modal_problem
from .messages import EPHEMERAL, LOADING, apply_edit, new_message
from .validation import check_message
from .wire import BODY, FAKE, UPLOADS, error, json_response, no_content

if TYPE_CHECKING:
    from .fake import FakeDiscord

API = "/api/v10"
MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, AUTOCOMPLETE, MODAL = 4, 5, 6, 7, 8, 9
CHAT_INPUT_COMMAND_MESSAGE = 20


def _fake(request: web.Request) -> FakeDiscord:
    return request.app[FAKE]


def _type_error(message: str) -> web.Response:
    errs = {
        "type": {"_errors": [{"code": "INTERACTION_CALLBACK_TYPE_INVALID", "message": message}]}
    }
    return error(400, 50035, "Invalid Form Body", errs)


def _response_extras(fake: FakeDiscord, inter: Interaction) -> dict:
    """The fields Discord puts on a message an interaction created."""
    user = inter.payload.get("member", {}).get("user") or inter.payload.get("user")
    meta: dict[str, Any] = {
        "id": str(inter.id),
        "type": inter.payload["type"],
        "user": user,
        "authorizing_integration_owners": inter.payload["authorizing_integration_owners"],
    }
    if inter.message_id:
        meta["interacted_message_id"] = str(inter.message_id)
    extras: dict[str, Any] = {
        "webhook_id": str(fake.bot_user_id),
        "application_id": str(fake.bot_user_id),
        "interaction_metadata": meta,
    }
    if inter.kind == "command":
        extras["interaction"] = {
            "id": str(inter.id),
            "type": inter.payload["type"],
            "name": inter.payload["data"]["name"],
            "user": user,
        }
    return extras


async def _create_response_message(
    fake: FakeDiscord, inter: Interaction, data: dict, uploads, flags: int, msg_type: int
) -> dict:
    msg = new_message(
        fake.world,
        inter.channel_id,
        fake.bot_user_id,
        data,
        uploads,
        msg_type=msg_type,
        extra=_response_extras(fake, inter),
        interaction_id=inter.id,
        extra_flags=flags,
    )
    fake.counters["messages_created"] += 1
    if not flags & EPHEMERAL:  # ephemeral messages never reach the gateway
        await fake.dispatch("MESSAGE_CREATE", msg)
    return msg


async def _edit(fake: FakeDiscord, message_id: int, body: dict, uploads) -> dict:
    msg = apply_edit(fake.world, message_id, body, uploads)
    fake.counters["messages_edited"] += 1
    if not fake.world.meta[message_id].ephemeral:
        await fake.dispatch("MESSAGE_UPDATE", msg)
    return msg


async def callback(request: web.Request) -> web.Response:
    fake = _fake(request)
    inter = fake.interactions.get(int(request.match_info["interaction_id"]))
    if inter is None or inter.token != request.match_info["token"]:
        return error(404, 10062, "Unknown interaction")
    body = request[BODY] or {}
    response = await _callback(fake, inter, body, request[UPLOADS])
    inter._record(body, response.status)
    if body.get("type") == MODAL and response.status == 200 and fake.latency_s:
        # Discord shows the modal to the user as it sends this answer back: the answer takes
        # the network's time to reach the bot, the user's submit may come first.
        await asyncio.sleep(fake.latency_s)
    return response


async def _callback(fake: FakeDiscord, inter: Interaction, body: dict, uploads) -> web.Response:
    if inter.acknowledged:
        return error(400, 40060, "Interaction has already been acknowledged.")
    if time.monotonic() - inter.created > fake.interaction_deadline_s:
        fake.counters["interaction_expired"] += 1
        return error(404, 10062, "Unknown interaction")
    ctype, data = body.get("type"), body.get("data") or {}
    flags = (data.get("flags") or 0) & EPHEMERAL
    # An UPDATE_MESSAGE answer to a modal submit edits the message whose button opened the modal.
    is_component = inter.kind == "component" or (
        inter.kind == "modal_submit" and inter.message_id is not None
    )
    msg: dict | None = None
    if ctype == MESSAGE:
        problem = check_message(data, files=len(uploads))
        if problem:
            return json_response(problem, 400)
        msg_type = CHAT_INPUT_COMMAND_MESSAGE if inter.kind == "command" else 0
        msg = await _create_response_message(fake, inter, data, uploads, flags, msg_type)
    elif ctype == DEFERRED_MESSAGE:
        msg_type = CHAT_INPUT_COMMAND_MESSAGE if inter.kind == "command" else 0
        msg = await _create_response_message(fake, inter, {}, [], flags | LOADING, msg_type)
    elif ctype in (DEFERRED_UPDATE, UPDATE_MESSAGE):
        if not is_component:
            return _type_error("This callback type is only valid for component interactions")
        target = fake.world.messages.get(inter.message_id or 0)
        if target is None:
            return error(404, 10008, "Unknown Message")
        if ctype == UPDATE_MESSAGE:
            problem = check_message(data, files=len(uploads), existing=target)
            if problem:
                return json_response(problem, 400)
            target = await _edit(fake, inter.message_id, data, uploads)
        msg = target
    elif ctype == MODAL:
        if inter.kind == "modal_submit":
            return _type_error("A modal cannot be answered with another modal")
        problem = modal_problem(data)
        if problem:
            return _type_error(problem)
    elif ctype != AUTOCOMPLETE:
        return _type_error(f"Callback type {ctype} is not valid here")
    inter.response_type = ctype
    if msg is not None:
        inter.original_id = int(msg["id"])
    result: dict[str, Any] = {
        "interaction": {
            "id": str(inter.id),
            "type": inter.payload["type"],
            "response_message_loading": ctype == DEFERRED_MESSAGE,
            "response_message_ephemeral": bool(flags),
        },
        "resource": {"type": ctype},
    }
    if msg is not None:
        result["interaction"]["response_message_id"] = msg["id"]
        result["resource"]["message"] = msg
    # Always 200 + JSON: discord.py asks with_response=1 and fails on an empty 204.
    return json_response(result)


def _webhook_interaction(request: web.Request) -> tuple[Interaction | None, web.Response | None]:
    fake = _fake(request)
    inter = fake.interactions_by_token.get(request.match_info["token"])
    if inter is None or int(request.match_info["application_id"]) != fake.bot_user_id:
        return None, error(404, 10015, "Unknown Webhook")
    if time.monotonic() - inter.created > fake.interaction_token_lifetime_s:
        return None, error(401, 50027, "Invalid Webhook Token")
    if not inter.acknowledged:
        return None, error(404, 10015, "Unknown Webhook")
    return inter, None


async def webhook_message(request: web.Request) -> web.Response:
    """GET/PATCH/DELETE /webhooks/{app}/{token}/messages/{@original|id}."""
    fake = _fake(request)
    inter, refused = _webhook_interaction(request)
    if refused is not None:
        return refused
    raw = request.match_info["message_id"]
    mid = inter.original_id if raw == "@original" else int(raw) if raw.isdigit() else None
    allowed = {inter.original_id, *inter.followup_ids}
    if mid is None or mid not in allowed or mid not in fake.world.messages:
        return error(404, 10008, "Unknown Message")
    if request.method == "GET":
        return json_response(fake.world.messages[mid])
    if request.method == "DELETE":
        await fake.delete_stored_message(mid)
        return no_content()
    body, uploads = request[BODY] or {}, request[UPLOADS]
    problem = check_message(body, files=len(uploads), existing=fake.world.messages[mid])
    if problem:
        return json_response(problem, 400)
    return json_response(await _edit(fake, mid, body, uploads))


async def followup(request: web.Request) -> web.Response:
    fake = _fake(request)
    inter, refused = _webhook_interaction(request)
    if refused is not None:
        return refused
    body, uploads = request[BODY] or {}, request[UPLOADS]
    problem = check_message(body, files=len(uploads))
    if problem:
        return json_response(problem, 400)
    original = fake.world.messages.get(inter.original_id or 0)
    if original is not None and original["flags"] & LOADING and not inter.followup_ids:
        # After a deferred response, the first followup replaces the "thinking" message.
        msg = await _edit(fake, inter.original_id, body, uploads)
    else:
        flags = (body.get("flags") or 0) & EPHEMERAL
        msg = await _create_response_message(fake, inter, body, uploads, flags, 0)
    inter.followup_ids.append(int(msg["id"]))
    if request.query.get("wait", "true").lower() in ("false", "0"):
        return no_content()
    return json_response(msg)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post(f"{API}/interactions/{{interaction_id:\\d+}}/{{token}}/callback", callback)
    hook = f"{API}/webhooks/{{application_id:\\d+}}/{{token}}"
    r.add_post(hook, followup)
    for method in ("GET", "PATCH", "DELETE"):
        r.add_route(method, f"{hook}/messages/{{message_id}}", webhook_message)
