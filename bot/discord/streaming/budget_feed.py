"""Tells the write scheduler what Discord answered, through discord.py's own `http_trace` hook.

discord.py keeps rate-limit headers inside its HTTP layer; an aiohttp TraceConfig passed to the
client as `http_trace` sees every request and response without forking or patching the library.
"""

from __future__ import annotations

import contextlib
import logging
import re
from types import SimpleNamespace
from typing import Any

import aiohttp

from bot.discord.streaming.write_scheduler import WriteScheduler

log = logging.getLogger(__name__)

# Message creates, edits and deletes share one per-channel bucket.
MESSAGE_WRITE = re.compile(r"/channels/(\d+)/messages(?:/\d+)?$")
WRITE_METHODS = frozenset({"POST", "PATCH", "DELETE"})
# A channel's history (GET, no message id): the one read recent context makes per turn, and
# catch-up's per channel; a channel itself (GET), which catch-up reads when it is not cached.
HISTORY_READ = re.compile(r"/channels/\d+(?:/messages)?$")


def message_write_channel(method: str, path: str) -> int | None:
    """The channel whose message bucket this request spends, or None for any other route."""
    if method.upper() not in WRITE_METHODS:
        return None
    match = MESSAGE_WRITE.search(path)
    return int(match.group(1)) if match else None


def trace_config(scheduler: WriteScheduler) -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()

    async def on_sent(_: Any, request: SimpleNamespace, params: Any) -> None:
        # Counted when the request is written, not when discord.py starts it: on a busy event
        # loop the two can be a tenth of a second apart, and Discord counts arrivals.
        channel_id = message_write_channel(params.method, params.url.path)
        if channel_id is None:
            # Typing, status reactions, recent context's and catch-up's reads were counted
            # when may_type() let them go.
            path = params.url.path
            typing = (
                path.endswith("/typing")
                or "/reactions/" in path
                or (params.method.upper() == "GET" and HISTORY_READ.search(path) is not None)
            )
            request.counted = scheduler.note_other_request(typing=typing)
        else:
            request.counted = scheduler.note_write(channel_id)

    def answered(request: SimpleNamespace) -> None:
        # Discord counted the request by now; only from here may its window start to run out.
        counted = getattr(request, "counted", None)
        if counted is not None:
            scheduler.answered(counted)

    async def on_failed(_: Any, request: SimpleNamespace, __: Any) -> None:
        answered(request)

    async def on_end(_: Any, request: SimpleNamespace, params: Any) -> None:
        # What the answer says is taken in before its request frees any room.
        try:
            await read_answer(params)
        finally:
            answered(request)

    async def read_answer(params: Any) -> None:
        channel_id = message_write_channel(params.method, params.url.path)
        headers = params.response.headers
        if params.response.status == 429:
            is_global = headers.get("X-RateLimit-Global", "").lower() == "true"
            retry_after = (
                await _body_retry_after(params.response)
                or _seconds(headers.get("X-RateLimit-Reset-After"))
                or _seconds(headers.get("Retry-After"))
            )
            log.warning(
                "Discord answered 429 on %s %s (retry after %.2f s%s)",
                params.method,
                params.url.path,
                retry_after or 0.0,
                ", global" if is_global else "",
            )
            if is_global or channel_id is not None:
                scheduler.rate_limited(None if is_global else channel_id, retry_after or 1.0)
            return
        if channel_id is None:
            return
        remaining = headers.get("X-RateLimit-Remaining")
        reset_after = _seconds(headers.get("X-RateLimit-Reset-After"))
        limit = headers.get("X-RateLimit-Limit")
        if remaining is not None and reset_after is not None:
            with contextlib.suppress(ValueError):
                scheduler.observe(
                    channel_id,
                    remaining=int(remaining),
                    reset_after_s=reset_after,
                    limit=int(limit) if limit is not None and limit.isdigit() else None,
                )

    trace.on_request_headers_sent.append(on_sent)
    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_failed)
    return trace


async def _body_retry_after(response: aiohttp.ClientResponse) -> float | None:
    """A 429's exact wait is in its JSON body (the Retry-After header is rounded up to whole
    seconds, and a global limit sends no reset header). aiohttp keeps the body it read, so
    discord.py still reads it after this."""
    with contextlib.suppress(Exception):
        body = await response.json(content_type=None)
        value = body.get("retry_after") if isinstance(body, dict) else None
        if isinstance(value, int | float) and value >= 0:
            return float(value)
    return None


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
