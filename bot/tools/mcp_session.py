"""One MCP session per task: opening, listing, holding and closing a server connection."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
from collections import deque
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Literal

import anyio
import httpx2
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from bot.config import MCPServerConfig
from bot.tools.mcp_format import describe_error, redact, short_url

# Same logger as bot.tools.mcp: operators see one source for MCP connection events.
log = logging.getLogger("bot.tools.mcp")
stderr_log = logging.getLogger("bot.tools.mcp.stderr")

CLIENT_INFO = types.Implementation(name="mcpcord", version="0.1.0")
_MAX_LIST_PAGES = 100  # a server whose tools/list paginates forever cannot hang start-up


class StderrSink:
    """A pipe for a stdio server's stderr: lines go to the debug log, the last few explain crashes."""

    def __init__(self, server: str) -> None:
        read_fd, write_fd = os.pipe()
        self.writer = os.fdopen(write_fd, "w")
        self.tail: deque[str] = deque(maxlen=3)
        self._server = server
        # A thread, because a blocking pipe read is simplest and works under any event loop.
        self._thread = threading.Thread(target=self._pump, args=(read_fd,), daemon=True)
        self._thread.start()

    def _pump(self, fd: int) -> None:
        with open(fd, encoding="utf-8", errors="replace") as stream:
            for line in stream:
                if line := line.rstrip():
                    self.tail.append(line)
                    stderr_log.debug("[%s] %s", self._server, line)

    def close_writer(self) -> None:
        # Once the child is spawned it holds its own copy; ours must go for EOF to arrive.
        if not self.writer.closed:
            self.writer.close()

    async def last_line(self) -> str | None:
        await asyncio.to_thread(self._thread.join, 0.5)
        return self.tail[-1] if self.tail else None


@dataclass(eq=False)
class Connection:
    """One session with one server, opened and closed by one task."""

    ready: asyncio.Event = field(default_factory=asyncio.Event)  # connected, or failed
    release: asyncio.Event = field(default_factory=asyncio.Event)  # asks the task to close
    client: Client | None = None
    tools: list[types.Tool] = field(default_factory=list)
    error: str | None = None
    http_status: int | None = None
    scope: anyio.CancelScope | None = None
    abandoned: bool = False  # start-up gave up waiting; nobody wants its outcome any more

    @property
    def live(self) -> bool:
        return self.client is not None and not self.release.is_set()


@dataclass(eq=False)
class ServerEntry:
    name: str
    config: MCPServerConfig
    conn: Connection | None = None
    listed: list[types.Tool] | None = None  # last good listing; None until it first connects
    error: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.config.command else "http"

    @property
    def secrets(self) -> list[str]:
        values = [*self.config.env.values(), *self.config.headers.values()]
        return [v.get_secret_value() for v in values]

    @property
    def where(self) -> str:
        # Never the full URL: its path or query may carry a token.
        return self.config.command or short_url(self.config.url or "")


async def run_connection(
    server: ServerEntry,
    conn: Connection,
    on_settled: Callable[[Connection], None],
    *,
    connect_timeout_s: float,
    tool_timeout_s: float,
) -> None:
    """Own one session from open to close, so the SDK's cancel scopes stay on one task.

    `on_settled` runs once, when the connection is up or has failed to come up; it runs here
    rather than in whoever awaits `ready`, so a cancelled waiter cannot lose the outcome.
    """
    sink = StderrSink(server.name) if server.config.command else None
    scope = conn.scope = anyio.CancelScope(deadline=anyio.current_time() + connect_timeout_s)
    try:
        with scope:
            async with AsyncExitStack() as stack:
                client = await _open(stack, server, conn, sink, connect_timeout_s, tool_timeout_s)
                tools = await _list_tools(client)
                scope.deadline = math.inf  # connected: from now on only release ends it
                conn.tools = _filter(server, tools)
                conn.client = client
                on_settled(conn)
                conn.ready.set()
                await conn.release.wait()
        if scope.cancelled_caught and conn.error is None and not conn.ready.is_set():
            conn.error = f"did not connect within {connect_timeout_s:g} s"
    except Exception as exc:
        reason = describe_error(exc, conn.http_status)
        if sink is not None and reason == "connection closed":
            tail = await sink.last_line()
            reason = "the process exited" + (f" (stderr: {tail})" if tail else "")
        conn.error = redact(reason, server.secrets)
        if conn.client is not None and not conn.release.is_set():
            # Died while idle (e.g. the HTTP transport failed): the next call reconnects.
            server.error = f"disconnected ({conn.error}); it restarts on the next call"
            log.warning("MCP server %r %s", server.name, server.error)
    finally:
        conn.client = None
        conn.release.set()
        if not conn.ready.is_set():
            on_settled(conn)
            conn.ready.set()
        if sink is not None:
            sink.close_writer()


async def _open(
    stack: AsyncExitStack,
    server: ServerEntry,
    conn: Connection,
    sink: StderrSink | None,
    connect_timeout_s: float,
    tool_timeout_s: float,
) -> Client:
    cfg = server.config
    if cfg.command:
        assert sink is not None
        params = StdioServerParameters(
            command=cfg.command,
            args=cfg.args,
            # The SDK adds a minimal safe environment (PATH, HOME, ...) under these.
            env={k: v.get_secret_value() for k, v in cfg.env.items()},
            cwd=cfg.cwd,
        )
        transport = stdio_client(params, errlog=sink.writer)
        client = await stack.enter_async_context(
            Client(transport, client_info=CLIENT_INFO, cache=None)
        )
        sink.close_writer()
        return client

    async def remember_status(response: httpx2.Response) -> None:
        # The SDK reports an HTTP error as a generic MCP error; keep the status for the reason.
        if response.request.method == "POST" and response.status_code >= 400:
            conn.http_status = response.status_code

    http = await stack.enter_async_context(
        httpx2.AsyncClient(
            headers={k: v.get_secret_value() for k, v in cfg.headers.items()},
            # A tool answer may take up to tool_timeout_s on a single response stream.
            timeout=httpx2.Timeout(connect_timeout_s, read=max(300.0, tool_timeout_s + 30)),
            event_hooks={"response": [remember_status]},
        )
    )
    assert cfg.url is not None
    return await stack.enter_async_context(
        Client(
            streamable_http_client(cfg.url, http_client=http),
            client_info=CLIENT_INFO,
            cache=None,
        )
    )


async def _list_tools(client: Client) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(_MAX_LIST_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _filter(server: ServerEntry, tools: list[types.Tool]) -> list[types.Tool]:
    allowed = server.config.allowed_tools
    if allowed is None:
        return tools
    missing = sorted(set(allowed) - {t.name for t in tools})
    if missing:
        log.warning("MCP server %r has no tools named %s", server.name, ", ".join(missing))
    return [t for t in tools if t.name in allowed]
