"""One MCP session per task: opening, listing, holding and closing a server connection."""

from __future__ import annotations

import asyncio
import logging
import math
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import httpx2
import mcp_types as types
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import PromptsListChanged, ToolsListChanged
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from bot.config import MCPServerConfig
from bot.tools.mcp_format import describe_error, redact, short_url
from bot.tools.mcp_watch import StderrSink, watched

# Same logger as bot.tools.mcp: operators see one source for MCP connection events.
log = logging.getLogger("bot.tools.mcp")

CLIENT_INFO = types.Implementation(name="mcpcord", version="0.1.0")
_MAX_LIST_PAGES = 100  # a server whose tools/list paginates forever cannot hang start-up


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
    relist: asyncio.Event = field(default_factory=asyncio.Event)  # its tools or prompts changed
    relisted: asyncio.Event = field(default_factory=asyncio.Event)  # no re-list is pending
    peer_closed: bool = False  # the transport ended from the server's side
    prompts: list[types.Prompt] = field(default_factory=list)
    has_resources: bool = False

    def __post_init__(self) -> None:
        self.relisted.set()

    @property
    def live(self) -> bool:
        return self.client is not None and not self.release.is_set()

    def tools_changed(self) -> None:
        self.relisted.clear()
        self.relist.set()


@dataclass(eq=False)
class ServerEntry:
    name: str
    config: MCPServerConfig
    conn: Connection | None = None
    listed: list[types.Tool] | None = None  # last good listing; None until it first connects
    error: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    prompts: list[types.Prompt] = field(default_factory=list)
    resources: bool = False
    inflight: list[Any] = field(default_factory=list)  # calls running now (MCPTools' _InFlight)

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


@dataclass(frozen=True)
class SessionHooks:
    """What a session reports back while it is open (the tool index lives in MCPTools)."""

    on_settled: Callable[[Connection], None]  # up, or failed to come up; runs once
    on_tools: Callable[[Connection], None]  # a re-list after `tools/list_changed` finished
    on_lost: Callable[[Connection, str], None]  # the transport ended while the session was live
    client_options: dict[str, Any] = field(default_factory=dict)  # sampling, elicitation, ...


async def run_connection(
    server: ServerEntry,
    conn: Connection,
    hooks: SessionHooks,
    *,
    connect_timeout_s: float,
    tool_timeout_s: float,
) -> None:
    """Own one session from open to close, so the SDK's cancel scopes stay on one task.

    `on_settled` runs once, when the connection is up or has failed to come up; it runs here
    rather than in whoever awaits `ready`, so a cancelled waiter cannot lose the outcome.
    """
    sink = StderrSink(server.name, server.secrets) if server.config.command else None
    scope = conn.scope = anyio.CancelScope(deadline=anyio.current_time() + connect_timeout_s)

    def transport_ended() -> None:
        if conn.live and not conn.peer_closed:
            conn.peer_closed = True
            hooks.on_lost(conn, "the process exited" if sink is not None else "connection closed")

    try:
        with scope:
            async with AsyncExitStack() as stack:
                client = await _open(
                    stack,
                    server,
                    conn,
                    sink,
                    hooks,
                    transport_ended,
                    connect_timeout_s,
                    tool_timeout_s,
                )
                tools = await _list_tools(client)
                scope.deadline = math.inf  # connected: from now on only release ends it
                conn.tools = _filter(server, tools)
                caps = client.server_capabilities
                await _list_extras(server, conn, client)
                conn.client = client
                hooks.on_settled(conn)
                conn.ready.set()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_relist_on_change, server, conn, hooks, tool_timeout_s)
                    watch_tools = bool(caps.tools and caps.tools.list_changed)
                    watch_prompts = bool(caps.prompts and caps.prompts.list_changed)
                    modern = client.protocol_version in MODERN_PROTOCOL_VERSIONS
                    if modern and (watch_tools or watch_prompts):
                        tg.start_soon(_listen_for_changes, server, conn, watch_tools, watch_prompts)
                    await conn.release.wait()
                    tg.cancel_scope.cancel()
        if scope.cancelled_caught and conn.error is None and not conn.ready.is_set():
            conn.error = f"did not connect within {connect_timeout_s:g} s"
    except Exception as exc:
        reason = describe_error(exc, conn.http_status, server.config.command)
        if sink is not None and reason == "connection closed":
            tail = await sink.last_line()
            reason = "the process exited" + (f" (stderr: {tail})" if tail else "")
        conn.error = redact(reason, server.secrets)
        if conn.client is not None and not conn.release.is_set():
            # Died while idle (e.g. the HTTP transport failed): the next call reconnects.
            hooks.on_lost(conn, conn.error)
    finally:
        conn.client = None
        conn.release.set()
        conn.relisted.set()
        if not conn.ready.is_set():
            hooks.on_settled(conn)
            conn.ready.set()
        if sink is not None:
            sink.close_writer()


async def _relist_on_change(
    server: ServerEntry, conn: Connection, hooks: SessionHooks, timeout_s: float
) -> None:
    """Re-list tools and prompts after each `list_changed`, on this task: a request sent from
    the notification handler itself would wait on the loop that delivers its answer."""
    assert conn.client is not None
    while True:
        await conn.relist.wait()
        conn.relist.clear()
        try:
            with anyio.fail_after(timeout_s):
                conn.tools = _filter(server, await _list_tools(conn.client))
                if conn.client.server_capabilities.prompts is not None:
                    conn.prompts = await _list_prompts(conn.client)
            hooks.on_tools(conn)
        except Exception as exc:
            log.warning(
                "MCP server %r: re-listing tools failed: %s",
                server.name,
                redact(describe_error(exc), server.secrets),
            )
        finally:
            if not conn.relist.is_set():
                conn.relisted.set()


async def _listen_for_changes(
    server: ServerEntry, conn: Connection, tools: bool, prompts: bool
) -> None:
    """2026-07-28 servers announce changes only on a `subscriptions/listen` stream."""
    assert conn.client is not None
    try:
        async with conn.client.listen(
            tools_list_changed=tools, prompts_list_changed=prompts
        ) as changes:
            async for event in changes:
                if isinstance(event, ToolsListChanged | PromptsListChanged):
                    conn.tools_changed()
    except Exception as exc:
        log.info("MCP server %r: no change notifications (%s)", server.name, describe_error(exc))


def stdio_command(command: str) -> str:
    """`python`/`python3` means the bot's own interpreter: a bot started as `.venv/bin/python
    -m bot` (as systemd units do) would otherwise start whatever `python` is first on PATH,
    which lacks the modules installed next to the bot (the shipped `mcp_server_time`)."""
    return sys.executable if command in ("python", "python3") and sys.executable else command


async def _open(
    stack: AsyncExitStack,
    server: ServerEntry,
    conn: Connection,
    sink: StderrSink | None,
    hooks: SessionHooks,
    transport_ended: Callable[[], None],
    connect_timeout_s: float,
    tool_timeout_s: float,
) -> Client:
    cfg = server.config

    async def on_message(message: Any) -> None:
        # Handshake-era servers send change notifications on the session itself.
        if isinstance(
            message, types.ToolListChangedNotification | types.PromptListChangedNotification
        ):
            conn.tools_changed()
        elif isinstance(message, types.LoggingMessageNotification | types.ProgressNotification):
            pass  # delivered to the logging and progress callbacks
        elif isinstance(message, Exception):
            log.debug("MCP server %r transport error: %s", server.name, describe_error(message))
        else:
            log.debug("MCP server %r sent %s", server.name, getattr(message, "method", message))

    options: dict[str, Any] = {
        "client_info": CLIENT_INFO,
        "cache": None,
        "message_handler": on_message,
        **hooks.client_options,
    }
    if cfg.command:
        assert sink is not None
        params = StdioServerParameters(
            command=stdio_command(cfg.command),
            args=cfg.args,
            # The SDK adds a minimal safe environment (PATH, HOME, ...) under these.
            env={k: v.get_secret_value() for k, v in cfg.env.items()},
            cwd=cfg.cwd,
        )
        transport = watched(stdio_client(params, errlog=sink.writer), transport_ended)
        client = await stack.enter_async_context(Client(transport, **options))
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
            watched(streamable_http_client(cfg.url, http_client=http), transport_ended),
            **options,
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


async def _list_extras(server: ServerEntry, conn: Connection, client: Client) -> None:
    """Prompts and resources are extras: a server that fails to list them still serves tools."""
    caps = client.server_capabilities
    try:
        if caps.resources is not None:
            conn.has_resources = await _offers_resources(server, client)
        if caps.prompts is not None:
            conn.prompts = await _list_prompts(client)
    except (MCPError, ValidationError) as exc:
        log.warning(
            "MCP server %r: listing prompts or resources failed: %s",
            server.name,
            redact(describe_error(exc), server.secrets),
        )


async def _offers_resources(server: ServerEntry, client: Client) -> bool:
    """Whether to offer the model a read_resource tool for this server: only where there is
    something to read, and (with `allowed_tools`) only if listed there; never if denied."""
    allowed = server.config.allowed_tools
    if allowed is not None and "read_resource" not in allowed:
        return False
    if "read_resource" in server.config.disallowed_tools:
        return False
    if (await client.list_resources()).resources:
        return True
    return bool((await client.list_resource_templates()).resource_templates)


async def _list_prompts(client: Client) -> list[types.Prompt]:
    prompts: list[types.Prompt] = []
    cursor: str | None = None
    for _ in range(_MAX_LIST_PAGES):
        page = await client.list_prompts(cursor=cursor)
        prompts.extend(page.prompts)
        cursor = page.next_cursor
        if not cursor:
            break
    return prompts


def _filter(server: ServerEntry, tools: list[types.Tool]) -> list[types.Tool]:
    denied = set(server.config.disallowed_tools)
    allowed = server.config.allowed_tools
    if allowed is None:
        return [t for t in tools if t.name not in denied]
    # read_resource is the bot's own tool for servers with resources, not the server's.
    missing = sorted(set(allowed) - {t.name for t in tools} - {"read_resource"})
    if missing:
        log.warning("MCP server %r has no tools named %s", server.name, ", ".join(missing))
    # Deny wins over allowed_tools.
    return [t for t in tools if t.name in allowed and t.name not in denied]
