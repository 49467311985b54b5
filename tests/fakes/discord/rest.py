"""REST front door: recording, auth, latency and rate-limit middleware, plus user/app/command routes."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING

from aiohttp import web

from .gateway import APP_FLAGS
from .validation import FormErrors, upload_problem
from .wire import BODY, FAKE, UPLOADS, RecordedRequest, error, json_response, read_body

if TYPE_CHECKING:
    from .fake import FakeDiscord

log = logging.getLogger("fake_discord.rest")
# When a request reached the fake: the rate limiter counts Discord's global window by it.
ARRIVED: web.RequestKey[float] = web.RequestKey("arrived_at", float)
API = "/api/v10"
# Routes authenticated by the token in the URL: Discord wants no Authorization header there.
TOKEN_ROUTE_PREFIXES = (f"{API}/interactions/", f"{API}/webhooks/")
UNAUTHENTICATED = (f"{API}/gateway",)
MESSAGE_BUCKET_ROUTES = {
    ("POST", f"{API}/channels/{{channel_id}}/messages"),
    ("PATCH", f"{API}/channels/{{channel_id}}/messages/{{message_id}}"),
}
MAJOR_PARAMS = ("channel_id", "guild_id", "webhook_token", "token", "application_id")


def _bucket_for(request: web.Request) -> tuple[str, str, bool]:
    canonical = (
        request.match_info.route.resource.canonical if request.match_info.route.resource else ""
    )
    major = next((request.match_info[k] for k in MAJOR_PARAMS if k in request.match_info), "")
    if (request.method, canonical) in MESSAGE_BUCKET_ROUTES:
        return "messages", major, False
    if canonical.endswith("/reactions/{emoji}/@me"):
        return "reactions", major, False  # adding and removing share one bucket
    # Interaction endpoints are not subject to the global limit on Discord.
    exempt = request.path.startswith(TOKEN_ROUTE_PREFIXES)
    return f"{request.method} {canonical}", major, exempt


def make_middleware(fake: FakeDiscord):
    @web.middleware
    async def middleware(request: web.Request, handler) -> web.StreamResponse:
        if not request.path.startswith(API + "/"):
            return await handler(request)  # the websocket and the attachment CDN are not REST
        body, uploads = await read_body(request)
        request[BODY], request[UPLOADS] = body, uploads
        rec = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            json=body,
            headers=dict(request.headers),
            t=time.monotonic(),
            files=[
                {
                    "field": f"files[{u.index}]",
                    "filename": u.filename,
                    "size": len(u.data),
                    "content_type": u.content_type,
                }
                for u in uploads
            ],
        )
        fake.requests.append(rec)
        request[ARRIVED] = rec.t
        if fake.latency_s:
            await asyncio.sleep(fake.latency_s)
        fault = fake.faults.take(request.method, request.path)
        if fault is not None and fault.kind == "hang":
            fake.counters["hung_requests"] += 1
            await fault.released.wait()
            return await _drop(fake, request, handler, rec, after=False)
        if fault is not None and fault.kind == "drop":
            return await _drop(fake, request, handler, rec, after=fault.after_handling)
        if fault is not None:
            fake.counters["faults"] += 1
            rec.status = fault.status
            return error(fault.status, fault.code, fault.message)
        response, extra_headers = await _respond(fake, request, handler)
        response.headers.update(extra_headers)
        response.headers.setdefault("Via", "1.1 google")  # real Discord responses all carry it
        rec.status = response.status
        rec.response_headers = dict(response.headers)
        if isinstance(response, web.Response) and response.body and response.status != 204:
            try:
                rec.response = json.loads(response.body)
            except (ValueError, TypeError):
                rec.response = None
        if response.status in (401, 403, 429):
            fake.counters["invalid_requests"] += 1
        return response

    return middleware


async def _drop(
    fake: FakeDiscord, request: web.Request, handler, rec: RecordedRequest, *, after: bool
) -> web.StreamResponse:
    """Close the connection without an answer; the client sees ServerDisconnectedError."""
    if after:
        await _respond(fake, request, handler)
    fake.counters["dropped_connections"] += 1
    rec.status = -1
    if request.transport is not None:
        request.transport.abort()
    # Writing to the aborted transport fails quietly: aiohttp counts it as a client disconnect.
    return web.Response(status=204)


async def _respond(fake: FakeDiscord, request: web.Request, handler):
    if request.match_info.http_exception is not None:
        fake.counters["unknown_route"] += 1
        fake.unknown_routes.append(f"{request.method} {request.path}")
        log.warning(
            "fake-discord: UNKNOWN ROUTE %s %s (add it to the fake)", request.method, request.path
        )
        return error(404, 0, "404: Not Found"), {}
    needs_auth = not request.path.startswith(TOKEN_ROUTE_PREFIXES + UNAUTHENTICATED)
    if request.path == f"{API}/gateway/bot":
        needs_auth = True
    if needs_auth and request.headers.get("Authorization") != f"Bot {fake.token}":
        return error(401, 0, "401: Unauthorized"), {}
    route, major, exempt = _bucket_for(request)
    token = request.headers.get("Authorization", "")
    decision = fake.ratelimiter.check(
        route, major, exempt_global=exempt, token=token, arrived_at=request.get(ARRIVED)
    )
    if decision.status == 429:
        fake.counters["429"] += 1
        if decision.is_global:
            fake.counters["global_429"] += 1
        return json_response(decision.body, 429), decision.headers
    too_much = upload_problem([len(u.data) for u in request[UPLOADS]], request[BODY])
    if too_much is not None:
        status, body = too_much
        return json_response(body, status), decision.headers
    return await handler(request), decision.headers


# -- users, gateway, application ---------------------------------------------------------------


async def get_me(request: web.Request) -> web.Response:
    fake: FakeDiscord = request.app[FAKE]
    me = fake.world.user_payload(fake.bot_user_id)
    me.update(verified=True, mfa_enabled=False, email=None, locale="en-US", premium_type=0)
    return json_response(me)


async def get_user(request: web.Request) -> web.Response:
    fake: FakeDiscord = request.app[FAKE]
    uid = int(request.match_info["user_id"])
    if uid not in fake.world.users:
        return error(404, 10013, "Unknown User")
    return json_response(fake.world.user_payload(uid))


async def get_member(request: web.Request) -> web.Response:
    """A guild member: every user of the world is a member of every guild the bot is in."""
    fake: FakeDiscord = request.app[FAKE]
    uid, gid = int(request.match_info["user_id"]), int(request.match_info["guild_id"])
    if gid not in fake.world.guilds:
        return error(404, 10004, "Unknown Guild")
    if uid not in fake.world.users:
        return error(404, 10007, "Unknown Member")
    return json_response(fake.world.member_payload(uid))


async def get_gateway(request: web.Request) -> web.Response:
    fake: FakeDiscord = request.app[FAKE]
    data: dict = {"url": fake.gateway.ws_url}
    if request.path.endswith("/bot"):
        data["shards"] = 1
        data["session_start_limit"] = {
            "total": 1000,
            "remaining": 1000 - fake.counters["identify"],
            "reset_after": 86_400_000,
            "max_concurrency": 1,
        }
    return json_response(data)


async def get_application(request: web.Request) -> web.Response:
    fake: FakeDiscord = request.app[FAKE]
    world = fake.world
    bot = world.users[world.bot_user_id]
    return json_response(
        {
            "id": str(bot.id),
            "name": bot.name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": world.user_payload(world.owner_id),
            "team": None,
            "flags": APP_FLAGS,
            "bot": world.user_payload(bot.id),
            "redirect_uris": [],
            "interactions_endpoint_url": None,  # non-null makes discord.py warn it gets no events
            "approximate_guild_count": 1,
            "tags": [],
        }
    )


# -- application commands ------------------------------------------------------------------------


def _command_errors(commands: list) -> dict | None:
    errs = FormErrors()
    seen = set()
    for i, cmd in enumerate(commands):
        name, ctype = cmd.get("name") or "", cmd.get("type", 1)
        if not 1 <= len(name) <= 32 or (ctype == 1 and name != name.lower()):
            errs.add(f"{i}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if (name, ctype) in seen:
            errs.add(
                f"{i}.name",
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                "Application command names must be unique",
            )
        seen.add((name, ctype))
        desc = cmd.get("description") or ""
        if ctype == 1 and not 1 <= len(desc) <= 100:
            errs.add(
                f"{i}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        if len(cmd.get("options") or []) > 25:
            errs.add(f"{i}.options", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    return errs.body()


async def commands_route(request: web.Request) -> web.Response:
    fake: FakeDiscord = request.app[FAKE]
    if int(request.match_info["application_id"]) != fake.bot_user_id:
        return error(403, 50001, "Missing Access")
    guild = request.match_info.get("guild_id")
    key: str | int = int(guild) if guild else "global"
    if guild and int(guild) != fake.guild_id:
        return error(403, 50001, "Missing Access")
    if request.method == "GET":
        return json_response(fake.commands.get(key, []))
    body = request[BODY] or []
    problems = _command_errors(body)
    if problems:
        return json_response(problems, 400)
    # Bulk overwrite keeps the id of a command whose name and type survive, as Discord does.
    old = {(c["name"], c.get("type", 1)): c["id"] for c in fake.commands.get(key, [])}
    stored = []
    for cmd in body:
        ctype = cmd.get("type", 1)
        entry = {
            "id": old.get((cmd["name"], ctype)) or str(fake.world.ids.next()),
            "application_id": str(fake.bot_user_id),
            "version": str(fake.world.ids.next()),
            "type": ctype,
            "name": cmd["name"],
            "description": cmd.get("description", ""),
            "options": cmd.get("options") or [],
            "default_member_permissions": cmd.get("default_member_permissions"),
            "dm_permission": cmd.get("dm_permission", True),
            "contexts": cmd.get("contexts"),
            "integration_types": cmd.get("integration_types") or [0],
            "nsfw": cmd.get("nsfw", False),
            "name_localizations": cmd.get("name_localizations"),
            "description_localizations": cmd.get("description_localizations"),
        }
        if guild:
            entry["guild_id"] = guild
        stored.append(entry)
    fake.commands[key] = stored
    return json_response(stored)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{API}/users/@me", get_me)
    r.add_get(f"{API}/users/{{user_id:\\d+}}", get_user)
    r.add_get(f"{API}/guilds/{{guild_id:\\d+}}/members/{{user_id:\\d+}}", get_member)
    r.add_get(f"{API}/gateway", get_gateway)
    r.add_get(f"{API}/gateway/bot", get_gateway)
    r.add_get(f"{API}/oauth2/applications/@me", get_application)
    r.add_get(f"{API}/applications/@me", get_application)
    for path in (
        f"{API}/applications/{{application_id}}/commands",
        f"{API}/applications/{{application_id}}/guilds/{{guild_id}}/commands",
    ):
        r.add_get(path, commands_route)
        r.add_put(path, commands_route)
