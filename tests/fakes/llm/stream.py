"""Shared streaming plumbing: a reply plan, pause/drop markers and the SSE writer for both APIs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .items import (
    Cut,
    Item,
    Silent,
    Stall,
    Text,
    UsageReport,
    output_text,
    reasoning_tokens,
    token_counts,
)


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Drop:
    """Close the socket mid-body: the client sees a truncated chunked stream."""


DROP = Drop()
Event = str | Pause | Drop


@dataclass(frozen=True)
class Plan:
    """What one response streams: its items, and whether it stalls or is cut after them."""

    items: list[Item]
    stall: float | None = None
    cut: bool = False
    silent: bool = False  # a 200 stream with no events at all
    cached: int = 0  # input tokens the usage reports as served from the prompt cache
    usage: UsageReport | None = None  # scripted token counts (ScriptedLLM.report_usage)

    @classmethod
    def of(
        cls,
        reply: list[Item] | Cut | Stall | Silent,
        cached: int = 0,
        usage: UsageReport | None = None,
    ) -> Plan:
        if isinstance(reply, Cut):
            if reply.during is not None:
                return cls([reply.during], cut=True)
            # Small chunks so a cut after a few chars still shows partial deltas first.
            return cls([Text(reply.text[: reply.after_chars], chunk_size=8)], cut=True)
        if isinstance(reply, Stall):
            items: list[Item] = [Text(reply.text)] if reply.text else []
            if reply.during is not None:
                items.append(reply.during)
            return cls(items, stall=reply.seconds)
        if isinstance(reply, Silent):
            return cls([], silent=True)
        return cls(reply, cached=cached, usage=usage)


def counts(plan: Plan, request_input: Any) -> tuple[int, int, int, int]:
    """Input, output, cached and reasoning tokens one response reports: the scripted ones, or
    the deterministic len//4 ones."""
    if plan.usage is not None:
        u = plan.usage
        return u.input, u.output, min(u.cached, u.input), min(u.reasoning, u.output)
    inp, out = token_counts(request_input, output_text(plan.items))
    return inp, out, min(inp, plan.cached), reasoning_tokens(plan.items)


class Renderer:
    """Per-API event source; subclasses define prelude/open/close/finale for one response."""

    def prelude(self) -> Iterator[Event]:
        return iter(())

    def open(self, i: int, item: Item) -> Iterator[Event]:
        raise NotImplementedError

    def close(self, i: int, item: Item) -> Iterator[Event]:
        return iter(())

    def finale(self) -> Iterator[Event]:
        return iter(())

    def silence(self) -> Iterator[Event]:
        return iter(())

    def events(self, plan: Plan) -> Iterator[Event]:
        if plan.silent:
            yield from self.silence()
            return
        # open/close are split so a Cut can drop, and a Stall can pause, with an item half sent.
        yield from self.prelude()
        for i, item in enumerate(plan.items):
            yield from self.open(i, item)
            if plan.cut:
                yield DROP
                return
            if plan.stall is not None and i == len(plan.items) - 1:
                yield Pause(plan.stall)
            yield from self.close(i, item)
        if plan.stall is not None and not plan.items:
            yield Pause(plan.stall)
        yield from self.finale()


def text_deltas(text: Text) -> Iterator[str | Pause]:
    """Text chunks with the item's delay between them (before the first: `first_delay_s`)."""
    size = max(1, text.chunk_size)
    pieces = [text.text[i : i + size] for i in range(0, len(text.text), size)]
    if text.first_delay_s > 0:
        yield Pause(text.first_delay_s)
    for n, piece in enumerate(pieces):
        if n and text.delay_s > 0:
            yield Pause(text.delay_s)
        yield piece


def sse_data(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n"


def sse_event(payload: dict[str, Any]) -> str:
    return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n"


HANGUP_POLL_S = 0.02  # how often a pause looks whether the client has gone


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def pause(request: web.Request, seconds: float) -> bool:
    """Sleep like a slow model, but notice a client that hangs up meanwhile (True), as a real
    server does: it stops generating when the connection ends."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while (left := until - loop.time()) > 0:
        if client_gone(request):
            return True
        await asyncio.sleep(min(HANGUP_POLL_S, left))
    return client_gone(request)


async def pump(
    request: web.Request,
    headers: dict[str, str],
    events: Iterable[Event],
    on_hangup: Callable[[], None] | None = None,
    compress: bool = False,
) -> web.StreamResponse:
    """Write events as SSE; a Drop closes the transport so no terminator chunk is ever sent.
    A client that closes the stream before its end is reported to `on_hangup`. With `compress`
    the body is gzipped (aiohttp's compressor holds small writes back, so the events then
    arrive together near the end)."""
    resp = web.StreamResponse(
        status=200,
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **headers},
    )
    if compress:
        resp.enable_compression(web.ContentCoding.gzip)
    await resp.prepare(request)
    try:
        for ev in events:
            if isinstance(ev, Pause):
                if await pause(request, ev.seconds):
                    raise ConnectionResetError("the client hung up")
            elif isinstance(ev, Drop):
                await drop(request)
                return resp
            else:
                await resp.write(ev.encode())
        await resp.write_eof()
    except ConnectionResetError:
        # The client hung up mid-stream (a cancelled answer): normal, not a server error.
        if on_hangup is not None:
            on_hangup()
    return resp


async def drop(request: web.Request) -> None:
    """Abruptly end the connection; aiohttp's later write_eof then fails quietly (ConnectionError)."""
    # Let already-written bytes reach the client first so it sees the partial stream.
    await asyncio.sleep(0.01)
    if request.transport is not None:
        request.transport.close()


async def hang_up(request: web.Request) -> web.StreamResponse:
    """Close the connection before any byte of an answer: the client sees a server disconnect."""
    if request.transport is not None:
        request.transport.close()
    return web.StreamResponse()  # never sent: aiohttp finds the transport closed


async def cut_body(
    request: web.Request, headers: dict[str, str], body: bytes
) -> web.StreamResponse:
    """Non-streaming Cut: send half of a JSON body under a full Content-Length, then drop."""
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json", **headers})
    resp.content_length = len(body)
    await resp.prepare(request)
    await resp.write(body[: len(body) // 2])
    await drop(request)
    return resp
