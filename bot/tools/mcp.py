"""Connects the operator's MCP servers and lets the model list and call their tools.

Tool names shown to the model are `<server>__<tool>` (server = its key under `mcp.servers`),
with every character outside [a-zA-Z0-9_-] replaced by `_`. A name longer than 64 characters,
or one that would collide with another tool's name, keeps its first 55 characters and gets `_`
plus 8 hex digits of a hash of server and tool appended, so it stays unique and stable.

Each connection lives on its own task, which opens and closes the MCP session (the SDK's
AnyIO cancel scopes require that); calls from other tasks use the live session. A server that
dies is marked down and restarted on the next call. A call cut off by a dying server is not
retried (a tool may have side effects) but reported to the model as an error; the one retry is
when an HTTP server answers 404 for a session it forgot, which proves the tool did not run.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any, Literal

import anyio
import httpx2
from mcp import MCPError
from mcp_types import CONNECTION_CLOSED

from bot.config import MCPServerConfig
from bot.tools.mcp_content import split_resource, split_result
from bot.tools.mcp_format import describe_error, exposed_name, object_schema, redact
from bot.tools.mcp_prompts import PromptError, PromptInfo, complete, fetch
from bot.tools.mcp_requests import CallUpdates, InFlight, Sampled, Sampler, ServerRequests
from bot.tools.mcp_session import Connection, ServerEntry, SessionHooks, run_connection
from bot.tools.mcp_values import READER_KEY, ServerStatus, ToolResult, ToolSpec, reader_spec

__all__ = [
    "CallUpdates",
    "MCPTools",
    "Sampled",
    "Sampler",
    "ServerStatus",
    "ToolResult",
    "ToolSpec",
]

log = logging.getLogger(__name__)

_CLOSE_GRACE_S = 10.0  # how long __aexit__ waits for sessions to close before forcing them


# Internal: "the HTTP server forgot our session before running the tool; retry once".
_FORGOTTEN = ToolResult("session unknown to the server", is_error=True)


def _session_unknown(exc: MCPError) -> bool:
    """A call's error that says its session is unknown: the SDK's words for a 404 on the
    call's own POST ("Session terminated") or a server's ("Session not found"). A gateway's
    404 for a route it lacks says something else."""
    return "session" in exc.message.lower()


class MCPTools:
    def __init__(
        self,
        servers: dict[str, MCPServerConfig],
        *,
        tool_timeout_s: float = 60,
        connect_timeout_s: float = 20,
        sampling: Literal["deny", "ask", "allow"] = "deny",
        sampler: Sampler | None = None,
        server_request_timeout_s: float = 300,
        elicitation: bool = False,
    ) -> None:
        # server_side servers are run by the Responses server; the bot never connects them.
        self._servers = {
            name: ServerEntry(name, cfg) for name, cfg in servers.items() if not cfg.server_side
        }
        self._tool_timeout = tool_timeout_s
        self._connect_timeout = connect_timeout_s
        self._names: dict[tuple[str, str], str] = {}  # assigned once, so names never shift
        self._specs: dict[str, ToolSpec] = {}
        self._tasks: dict[asyncio.Task[None], Connection] = {}
        self._closing = False
        self._requests = ServerRequests(sampling, sampler, server_request_timeout_s, elicitation)

    async def __aenter__(self) -> MCPTools:
        conns = [self._start(server) for server in self._servers.values()]
        if conns:
            waits = [asyncio.ensure_future(c.ready.wait()) for c in conns]
            # Each task has its own connect deadline; the extra second covers a slow teardown.
            await asyncio.wait(waits, timeout=self._connect_timeout + 1)
            for w in waits:
                w.cancel()
        for server in self._servers.values():
            conn = server.conn
            if conn is None or conn.ready.is_set():
                continue  # settled: _settled already adopted it or logged why not
            conn.abandoned = True
            conn.release.set()  # still tearing down: let it finish in the background
            if conn.scope is not None:
                conn.scope.cancel()
            self._failed(server, f"did not connect within {self._connect_timeout:g} s")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing = True
        for conn in self._tasks.values():
            conn.release.set()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(list(self._tasks), timeout=_CLOSE_GRACE_S)
        for task in pending:
            # Cancel inside the task's own scope, so the task itself still unwinds its session.
            scope = self._tasks[task].scope
            if scope is not None:
                scope.cancel()
        if pending:
            await asyncio.wait(pending, timeout=_CLOSE_GRACE_S)

    async def reconfigure(self, servers: dict[str, MCPServerConfig]) -> None:
        """On reload: close removed or changed servers, connect added or changed ones.

        Waits up to the connect timeout for the new ones; a slow one keeps connecting and
        its tools appear when it is ready. Names of unchanged tools never shift."""
        wanted = {name: cfg for name, cfg in servers.items() if not cfg.server_side}
        for name, server in list(self._servers.items()):
            if wanted.get(name) != server.config:
                del self._servers[name]
                if server.conn is not None:
                    server.conn.release.set()  # its task closes the session
        added = [ServerEntry(n, c) for n, c in wanted.items() if n not in self._servers]
        self._servers.update((server.name, server) for server in added)
        self._rebuild()
        conns = [self._start(server) for server in added]
        if conns:
            waits = [asyncio.ensure_future(c.ready.wait()) for c in conns]
            await asyncio.wait(waits, timeout=self._connect_timeout + 1)
            for w in waits:
                w.cancel()

    def tools(self) -> list[ToolSpec]:
        return list(self._specs.values())

    def find(self, name: str) -> ToolSpec | None:
        return self._specs.get(name)

    def status(self) -> list[ServerStatus]:
        return [
            ServerStatus(
                name=s.name,
                transport=s.transport,
                connected=s.conn is not None and s.conn.live,
                error=s.error,
                tools=[spec.name for spec in self._specs.values() if spec.server == s.name],
                prompts=[p.name for p in s.prompts],
                sampling=self._requests.sampling,
                elicitation=self._requests.elicitation,
            )
            for s in self._servers.values()
        ]

    # ---- prompts --------------------------------------------------------------------------

    def prompts(self) -> list[PromptInfo]:
        return [
            PromptInfo(s.name, p.name, p.description or p.title or "", tuple(p.arguments or ()))
            for s in self._servers.values()
            for p in s.prompts
        ]

    def find_prompt(self, full_name: str) -> PromptInfo | None:
        return next((p for p in self.prompts() if p.full_name == full_name), None)

    async def get_prompt(self, prompt: PromptInfo, values: dict[str, str]) -> str:
        """The prompt's text with `values` filled in; PromptError says why not."""
        conn = await self._ensure(self._servers[prompt.server])
        if conn is None or conn.client is None:
            raise PromptError(f"MCP server '{prompt.server}' is unavailable.")
        return await fetch(conn.client, prompt, values, self._tool_timeout)

    async def complete_prompt(
        self, prompt: PromptInfo, argument: str, value: str, given: dict[str, str]
    ) -> list[str]:
        conn = self._servers[prompt.server].conn
        if conn is None or not conn.live or conn.client is None:
            return []  # autocomplete does not wait for a reconnect
        return await complete(conn.client, prompt, argument, value, given)

    # ---- calls ----------------------------------------------------------------------------

    async def call(
        self, name: str, arguments: dict[str, Any], *, updates: CallUpdates | None = None
    ) -> ToolResult:
        spec = self._specs.get(name)
        if spec is None:
            return ToolResult(f"unknown tool: {name}", is_error=True)
        server = self._servers[spec.server]
        result = await self._call_once(server, spec, arguments, updates)
        if result is _FORGOTTEN:
            # An HTTP server that restarted answers 404 for the old session without running
            # the tool, so one retry on a fresh session cannot run it twice.
            result = await self._call_once(server, spec, arguments, updates)
        if result is _FORGOTTEN:
            return ToolResult(f"MCP server '{server.name}' rejected the session", is_error=True)
        return result

    async def _call_once(
        self,
        server: ServerEntry,
        spec: ToolSpec,
        arguments: dict[str, Any],
        updates: CallUpdates | None,
    ) -> ToolResult:
        conn = await self._ensure(server)
        if conn is None or conn.client is None:
            return ToolResult(
                f"MCP server '{server.name}' is unavailable: {server.error}", is_error=True
            )
        running = InFlight(updates)
        running.scope.deadline = anyio.current_time() + self._tool_timeout
        started = running.begin(server.inflight)
        try:
            with running.scope:
                if self._names.get((spec.server, READER_KEY)) == spec.name:
                    read = await conn.client.read_resource(str(arguments.get("uri", "")))
                    return ToolResult.of(split_resource(list(read.contents), spec.server), False)
                # With a progress callback the SDK sends a progressToken in the call's _meta.
                progress = updates.progress if updates is not None else None
                result = await conn.client.call_tool(
                    spec.tool, arguments, progress_callback=progress
                )
            if running.scope.cancelled_caught:
                raise TimeoutError
        except TimeoutError:
            # Like a lost connection: the server may have done the work before the deadline,
            # and a model told only "timed out" tends to call a side-effecting tool again.
            return ToolResult(
                f"{spec.name} timed out after {self._tool_timeout:g} s; "
                "the tool may or may not have run.",
                is_error=True,
            )
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                return self._lost(server, conn, "connection closed")
            # `http_status` is the connection's last failed POST, any request's: only this
            # call's own error can say that the server did not know the session (and so did
            # not run the tool). Anything else may have run it: never retried.
            if conn.http_status == 404 and _session_unknown(exc):
                self._mark_lost(server, conn, "the server no longer knows the session")
                return _FORGOTTEN
            return ToolResult(redact(describe_error(exc), server.secrets), is_error=True)
        except (
            OSError,
            httpx2.HTTPError,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
        ) as exc:
            return self._lost(server, conn, describe_error(exc))
        except Exception as exc:  # e.g. a result that fails the tool's own output schema
            return ToolResult(redact(describe_error(exc), server.secrets), is_error=True)
        finally:
            await running.end(server.inflight, started)
        await self._settle_tool_changes(conn)
        return ToolResult.of(split_result(result, spec.tool), result.is_error)

    async def _settle_tool_changes(self, conn: Connection) -> None:
        """A tool that changed the server's tools announced it before answering: let the
        re-list finish, so the model's next request already offers the new tools."""
        await anyio.lowlevel.checkpoint()  # the notification handler runs before we go on
        with anyio.move_on_after(self._tool_timeout):
            await conn.relisted.wait()

    # ---- connections ----------------------------------------------------------------------

    def _start(self, server: ServerEntry) -> Connection:
        conn = Connection()
        server.conn = conn
        task = asyncio.create_task(
            run_connection(
                server,
                conn,
                SessionHooks(
                    on_settled=lambda c: self._settled(server, c),
                    on_tools=lambda c: self._tools_changed(server, c),
                    on_lost=lambda c, reason: self._mark_lost(server, c, reason),
                    client_options=self._client_options(server),
                ),
                connect_timeout_s=self._connect_timeout,
                tool_timeout_s=self._tool_timeout,
            ),
            name=f"mcp-{server.name}",
        )
        self._tasks[task] = conn
        task.add_done_callback(lambda t: self._tasks.pop(t, None))
        return conn

    async def _ensure(self, server: ServerEntry) -> Connection | None:
        """The live connection, reconnecting first if the last one died."""
        if server.conn is not None and server.conn.live:
            return server.conn
        async with server.lock:  # concurrent callers share one reconnect
            conn = server.conn
            if conn is not None and not conn.ready.is_set():
                # A reconnect is already under way (its first waiter was cancelled): join it.
                await conn.ready.wait()
                return conn if conn.live else None
            if conn is not None and conn.live:
                return conn
            if self._closing:
                server.error = "the bot is shutting down"
                return None
            conn = self._start(server)
            await conn.ready.wait()
            return conn if conn.live else None

    def _mark_lost(self, server: ServerEntry, conn: Connection, reason: str) -> None:
        if conn.live:
            conn.release.set()  # the task exits its context; the next call reconnects
            server.error = f"disconnected ({reason}); it restarts on the next call"
            log.warning("MCP server %r %s", server.name, server.error)

    def _lost(self, server: ServerEntry, conn: Connection, reason: str) -> ToolResult:
        self._mark_lost(server, conn, reason)
        return ToolResult(
            f"MCP server '{server.name}' stopped during the call ({reason}); "
            "the tool may or may not have run. It restarts on the next call.",
            is_error=True,
        )

    # ---- tool index -----------------------------------------------------------------------

    def _settled(self, server: ServerEntry, conn: Connection) -> None:
        if conn.abandoned or conn is not server.conn:
            conn.release.set()  # superseded: do not keep a second session open
            return
        if not conn.live:
            self._failed(server, conn.error or "closed while connecting")
            return
        server.listed = conn.tools
        server.prompts = conn.prompts
        server.resources = conn.has_resources
        server.error = None
        log.info(
            "MCP server %r (%s) connected: %d tools", server.name, server.transport, len(conn.tools)
        )
        self._rebuild()

    def _tools_changed(self, server: ServerEntry, conn: Connection) -> None:
        if conn is not server.conn:
            return
        server.listed = conn.tools
        server.prompts = conn.prompts
        log.info(
            "MCP server %r changed its tools or prompts: %d tools, %d prompts",
            server.name,
            len(conn.tools),
            len(conn.prompts),
        )
        self._rebuild()

    def _client_options(self, server: ServerEntry) -> dict[str, Any]:
        return self._requests.client_options(server)

    def _failed(self, server: ServerEntry, reason: str) -> None:
        server.error = reason
        # One line naming the server and why (never a URL path, header or env value).
        log.warning("MCP server %r (%s) unavailable: %s", server.name, server.where, reason)

    def _rebuild(self) -> None:
        specs: dict[str, ToolSpec] = {}
        for server in self._servers.values():
            for tool in server.listed or []:
                key = (server.name, tool.name)
                if key not in self._names:
                    self._names[key] = exposed_name(server.name, tool.name, self._names.values())
                name = self._names[key]
                specs[name] = ToolSpec(
                    name=name,
                    server=server.name,
                    tool=tool.name,
                    description=tool.description or tool.title or f"{tool.name} ({server.name})",
                    input_schema=object_schema(tool.input_schema),
                    annotations=tool.annotations,
                )
            if server.resources and server.listed is not None:
                key = (server.name, READER_KEY)
                if key not in self._names:
                    self._names[key] = exposed_name(
                        server.name, "read_resource", self._names.values()
                    )
                own = {tool.name for tool in server.listed}
                specs[self._names[key]] = reader_spec(self._names[key], server.name, own)
        self._specs = specs
