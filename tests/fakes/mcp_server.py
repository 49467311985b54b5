"""A real MCP server (mcp SDK's MCPServer) for tests: stdio or streamable HTTP, with a call log."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.abc
from mcp.server.elicitation import ElicitationResult
from mcp.server.mcpserver import Context, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts.base import Prompt
from mcp.server.mcpserver.resolve import Elicit
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INTERNAL_ERROR,
    Annotations,
    Completion,
    SamplingMessage,
    TextContent,
    ToolAnnotations,
)
from pydantic import BaseModel

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTENING = "listening on port"  # the HTTP variant's first stdout line: `listening on port P`


def _log_call(tool: str, arguments: dict[str, Any]) -> None:
    # Written before the tool does its work and flushed, so another process can count calls
    # even when the tool then crashes the server.
    path = os.environ.get("MCP_CALL_LOG")
    if not path:
        return
    line = json.dumps({"tool": tool, "arguments": arguments, "pid": os.getpid(), "t": time.time()})
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()


class Confirmation(BaseModel):
    """A yes-or-no question: nothing to fill in, only accept or decline."""


def _ask_to_confirm(question: str) -> Elicit[Confirmation]:
    # Asked the way the negotiated protocol wants (an input request, or elicitation/create).
    return Elicit(question, Confirmation)


def build_server(
    name: str,
    *,
    annotated: bool = False,
    resources: bool = False,
    sampling: bool = False,
    asking: bool = False,
    logs: bool = False,
) -> MCPServer:
    """`annotated`: also offer tools carrying MCP annotations (readOnlyHint, destructiveHint);
    `resources`: also offer one resource, `note://hello` (the bot then adds its reader);
    `sampling`: also a tool that asks the client's model to write (MCP sampling; the 2026
    protocol forbids server-initiated requests, so only over `--legacy` HTTP);
    `asking`: also tools that ask the client things (elicitation, sampling) and a prompt;
    `logs`: also a tool that sends MCP log messages at the levels asked for."""
    server = MCPServer(name, log_level="WARNING")

    if resources:

        @server.resource("note://hello", description="A note to read.")
        def hello() -> str:
            return "hello from the note"

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        _log_call("add", {"a": a, "b": b})
        return a + b

    @server.tool(description="Return the text unchanged.")
    def echo(text: str) -> str:
        _log_call("echo", {"text": text})
        return text

    @server.tool(description="Record a note (a side effect tests can count).")
    def record(note: str) -> str:
        _log_call("record", {"note": note})
        return f"recorded: {note}"

    @server.tool(description="Sleep for the given number of seconds, then answer.")
    async def slow(seconds: float) -> str:
        _log_call("slow", {"seconds": seconds})
        await anyio.sleep(seconds)
        return f"slept {seconds}"

    @server.tool(description="Wait until the file at `path` exists, then answer.")
    async def hold_until(path: str) -> str:
        _log_call("hold_until", {"path": path})
        # The test, another process, releases the call by creating the file: nothing to await.
        while not await anyio.Path(path).exists():  # noqa: ASYNC110
            await anyio.sleep(0.02)
        return f"released: {path}"

    @server.tool(description="Always fails with the given message.")
    def fail(message: str) -> str:
        _log_call("fail", {"message": message})
        # ToolError passes the message to the client; other exceptions are reported generically.
        raise ToolError(message)

    @server.tool(description="Add a tool `name` that answers `answer`, and announce the change.")
    async def grow(name: str, answer: str, ctx: Context) -> str:
        _log_call("grow", {"name": name, "answer": answer})

        def grown() -> str:
            _log_call(name, {})
            return answer

        server.add_tool(grown, name=name, description=f"A grown tool that answers {answer}.")
        await ctx.notify_tools_changed()
        return f"added {name}"

    @server.tool(description="Add a prompt `name` that asks `text`, and announce the change.")
    async def teach(name: str, text: str, ctx: Context) -> str:
        _log_call("teach", {"name": name, "text": text})

        def taught() -> str:
            return text

        server.add_prompt(Prompt.from_function(taught, name=name, description=f"Asks: {text}"))
        await ctx.notify_prompts_changed()
        return f"taught {name}"

    if logs:

        @server.tool(description="Send one MCP log message at each of the given levels.")
        async def log_at(levels: list[str], ctx: Context) -> str:
            _log_call("log_at", {"levels": levels})
            for level in levels:
                await ctx.log(level, f"{level} from the server")  # type: ignore[arg-type]
            return f"logged {len(levels)}"

    @server.tool(description="Write lines to stderr (for the client's log).")
    def shout(lines: list[str]) -> str:
        _log_call("shout", {"lines": lines})
        for line in lines:
            print(line, file=sys.stderr, flush=True)
        return f"wrote {len(lines)} lines"

    @server.tool(description="Report progress once with a long message, then answer.")
    async def chatter(lines: int, hold_s: float, ctx: Context) -> str:
        """A server that says too much in one progress notification (many lines, long ones)."""
        _log_call("chatter", {"lines": lines, "hold_s": hold_s})
        text = "\n".join(f"step {n}: " + "x" * 80 for n in range(1, lines + 1))
        await ctx.report_progress(1, 2, text + "\nLAST-PROGRESS-LINE")
        await anyio.sleep(hold_s)  # long enough for the reply to show the progress line
        return "chattered"

    @server.tool(description="Answer with many notes meant for the user only, not the model.")
    def notes(count: int, chars: int) -> list[TextContent]:
        _log_call("notes", {"count": count, "chars": chars})
        for_user = Annotations(audience=["user"])
        blocks = [
            TextContent(type="text", text=f"note {n}: " + "n" * chars, annotations=for_user)
            for n in range(1, count + 1)
        ]
        return [TextContent(type="text", text=f"sent {count} notes"), *blocks]

    @server.tool(description="Ask the user to confirm (a question with no fields).")
    def confirm(
        question: str,
        answer: Annotated[ElicitationResult[Confirmation], Resolve(_ask_to_confirm)],
    ) -> str:
        _log_call("confirm", {"question": question})
        return f"confirmation: {answer.action}"

    @server.tool(description="Runs, then answers with a protocol error (not a tool error).")
    def reject(message: str) -> str:
        _log_call("reject", {"message": message})
        raise MCPError(code=INTERNAL_ERROR, message=message)

    @server.tool(description="Kill the server process, to simulate a dying server.")
    def crash() -> str:
        _log_call("crash", {})
        os._exit(1)

    if annotated:

        @server.tool(
            description="Look something up (annotated read-only).",
            annotations=ToolAnnotations(read_only_hint=True),
        )
        def look(topic: str) -> str:
            _log_call("look", {"topic": topic})
            return f"looked: {topic}"

        @server.tool(
            description="Read-only by its annotation, yet also destructive: must still ask.",
            annotations=ToolAnnotations(read_only_hint=True, destructive_hint=True),
        )
        def purge(topic: str) -> str:
            _log_call("purge", {"topic": topic})
            return f"purged: {topic}"

    if sampling:

        @server.tool(description="Ask the client's model to write about a topic (MCP sampling).")
        async def sample(topic: str, ctx: Context) -> str:
            _log_call("sample", {"topic": topic})
            message = SamplingMessage(role="user", content=TextContent(type="text", text=topic))
            result = await ctx.session.create_message(
                [message], max_tokens=200, related_request_id=ctx.request_id
            )
            text = result.content.text if isinstance(result.content, TextContent) else ""
            return f"{result.model} wrote: {text}"

    if asking:
        _add_asking(server)
    return server


class Reply(BaseModel):
    answer: str


_background: set[asyncio.Task[None]] = set()  # kept so the loop does not drop them


def _sampling_request(prompt: str) -> list[SamplingMessage]:
    return [SamplingMessage(role="user", content=TextContent(type="text", text=prompt))]


async def _sample(session: Any, prompt: str, related: Any = None) -> str:
    """The client's answer, or its refusal, as one line."""
    try:
        result = await session.create_message(
            _sampling_request(prompt), max_tokens=100, related_request_id=related
        )
    except Exception as exc:
        return f"refused: {exc}"
    content = result.content
    return f"answered: {content.text if isinstance(content, TextContent) else content}"


def _wait_logged(text: str, limit_s: float = 30) -> bool:
    """Whether the call log came to contain `text` (another call's mark) within `limit_s`."""
    path = os.environ.get("MCP_CALL_LOG")
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if path and os.path.exists(path) and text in Path(path).read_text(encoding="utf-8"):
            return True
        time.sleep(0.05)
    return False


def _add_asking(server: MCPServer) -> None:
    @server.tool(description="Ask the user a question (elicitation) and report the answer.")
    async def ask(question: str, ctx: Context, after: str = "") -> str:
        """`after`: first wait until the call log shows this (another call's mark)."""
        _log_call("ask", {"question": question, "after": after})
        if after:
            await anyio.to_thread.run_sync(_wait_logged, after)
        result = await ctx.elicit(question, Reply)
        answer = getattr(getattr(result, "data", None), "answer", None)
        _log_call("asked", {"done": question, "action": result.action, "answer": answer})
        return f"{result.action}: {answer}"

    @server.tool(description="Run until the call log shows `until` (another call's mark).")
    async def hold(tag: str, until: str) -> str:
        _log_call("hold", {"tag": tag, "until": until})
        seen = await anyio.to_thread.run_sync(_wait_logged, until)
        return f"held {tag}: {'released' if seen else 'gave up'}"

    @server.tool(description="Ask the client's model `times` times, one after another.")
    async def sample(prompt: str, times: int, ctx: Context) -> str:
        _log_call("sample", {"prompt": prompt, "times": times})
        answers = [
            await _sample(ctx.session, f"{prompt} #{n}", ctx.request_id)
            for n in range(1, times + 1)
        ]
        return "\n".join(answers)

    @server.tool(description="Ask the client's model `times` times at once.")
    async def sample_at_once(prompt: str, times: int, ctx: Context) -> str:
        _log_call("sample_at_once", {"prompt": prompt, "times": times})
        answers: list[str] = [""] * times

        async def one(n: int) -> None:
            answers[n] = await _sample(ctx.session, f"{prompt} #{n + 1}", ctx.request_id)

        async with anyio.create_task_group() as tg:
            for n in range(times):
                tg.start_soon(one, n)
        return "\n".join(answers)

    def in_background(session: Any, prompt: str, delay_s: float) -> None:
        async def later() -> None:
            await anyio.sleep(delay_s)
            # No related request: the connection's own channel, as a server's background job.
            result = await _sample(session, f"{prompt} #later")
            _log_call("sampled_later", {"prompt": prompt, "result": result})

        task = asyncio.get_running_loop().create_task(later())
        _background.add(task)
        task.add_done_callback(_background.discard)

    @server.tool(description="Answer at once; ask the client's model a second later.")
    async def sample_later(prompt: str, ctx: Context) -> str:
        _log_call("sample_later", {"prompt": prompt})
        in_background(ctx.session, prompt, 1.0)
        return "asked for later"

    @server.tool(description="Ask the client's model, and answer before it has answered.")
    async def sample_and_leave(prompt: str, ctx: Context) -> str:
        _log_call("sample_and_leave", {"prompt": prompt})
        in_background(ctx.session, prompt, 0)
        await anyio.sleep(3)  # time for the client to put the request to a person
        return "left before the answer"

    @server.prompt(description="Greet someone by name.")
    def greet(name: str) -> str:
        return f"Say hello to {name}."

    @server.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion:
        _log_call("complete", {"argument": argument.name, "value": argument.value})
        return Completion(values=[f"{argument.value}-completed"])


def _require_header(app: Any, required: str) -> Any:
    """Proves the client sends its configured headers: without them every request is 401."""
    key, _, value = required.partition(":")
    want = (key.strip().lower().encode(), value.strip().encode())

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and want not in scope["headers"]:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"missing header"})
            return
        await app(scope, receive, send)

    return wrapped


async def _read_json(receive: Any) -> tuple[bytes, Any]:
    """A request's whole body, and its JSON (None if it is not JSON)."""
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    try:
        return body, json.loads(body)
    except ValueError:
        return body, None


def _replay(body: bytes, receive: Any) -> Any:
    """`receive` for the app behind a middleware that read the body first."""
    replayed = False

    async def replay() -> Any:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _legacy_only(app: Any) -> Any:
    """Answers `server/discover` with "method not found", so clients fall back to the
    2025 initialize handshake and get a session id (which a restarted server forgets)."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        body, payload = await _read_json(receive)
        if isinstance(payload, dict) and payload.get("method") == "server/discover":
            error = {"code": -32601, "message": "Method not found"}
            out = json.dumps({"jsonrpc": "2.0", "id": payload.get("id"), "error": error})
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": out.encode()})
            return
        await app(scope, _replay(body, receive), send)

    return wrapped


def _no_route(app: Any, tool: str) -> Any:
    """Like a gateway in front of the server that has no route for one tool: a call of it is
    answered HTTP 404 with a JSON-RPC error, while the session stays good for everything else."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        body, payload = await _read_json(receive)
        call = isinstance(payload, dict) and payload.get("method") == "tools/call"
        if call and (payload.get("params") or {}).get("name") == tool:
            error = {"code": -32601, "message": f"no route to tool {tool}"}
            out = json.dumps({"jsonrpc": "2.0", "id": payload.get("id"), "error": error})
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": out.encode()})
            return
        await app(scope, _replay(body, receive), send)

    return wrapped


async def _serve_http(
    server: MCPServer,
    port: int,
    required_header: str | None,
    legacy: bool,
    no_route: str | None = None,
) -> None:
    import uvicorn

    app: Any = server.streamable_http_app()
    if legacy:
        app = _legacy_only(app)
    if no_route:
        app = _no_route(app, no_route)
    if required_header:
        app = _require_header(app, required_header)
    # Bound here and handed to uvicorn, so port 0 means the kernel's pick with no window in which
    # another process could take it; SO_REUSEADDR lets a restart rebind its old port at once.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    print(f"{LISTENING} {sock.getsockname()[1]}", flush=True)
    # Nobody reads stdout after that line: a full pipe must never block the server.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    config = uvicorn.Config(app, log_level="warning")
    await uvicorn.Server(config).serve(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--name", default="fake")
    parser.add_argument("--require-header", help='"Name: value" every HTTP request must carry')
    parser.add_argument("--legacy", action="store_true", help="HTTP: refuse the 2026 protocol")
    parser.add_argument("--annotated", action="store_true", help="also offer annotated tools")
    parser.add_argument("--resources", action="store_true", help="also offer a resource")
    parser.add_argument("--no-route", help="HTTP: answer calls of this tool 404, as a gateway")
    parser.add_argument("--sampling", action="store_true", help="also offer a sampling tool")
    parser.add_argument("--asking", action="store_true", help="also tools that ask the client")
    parser.add_argument("--logs", action="store_true", help="also offer a tool that logs")
    args = parser.parse_args(argv)
    gate = os.environ.get("MCP_START_GATE")
    if gate:  # a test holds this start (say, a restart) while the file exists, and counts starts
        _log_call("(start)", {})
        while os.path.exists(gate):
            time.sleep(0.02)
    server = build_server(
        args.name,
        annotated=args.annotated,
        resources=args.resources,
        sampling=args.sampling,
        asking=args.asking,
        logs=args.logs,
    )
    if args.transport == "stdio":
        server.run()
    else:
        anyio.run(_serve_http, server, args.port, args.require_header, args.legacy, args.no_route)


# ---- helpers for tests ---------------------------------------------------------------------


def stdio_params(
    log_path: str | Path | None = None,
    name: str = "fake",
    *,
    annotated: bool = False,
    resources: bool = False,
    asking: bool = False,
    logs: bool = False,
) -> dict[str, Any]:
    """command/args/env/cwd for an MCPServerConfig that runs this server over stdio."""
    env = {"MCP_CALL_LOG": str(log_path)} if log_path else {}
    extra = ["--annotated"] if annotated else []
    extra += ["--resources"] if resources else []
    extra += ["--asking"] if asking else []
    extra += ["--logs"] if logs else []
    return {
        "command": sys.executable,
        "args": ["-m", "tests.fakes.mcp_server", "--transport", "stdio", "--name", name, *extra],
        "env": env,
        "cwd": str(REPO_ROOT),
    }


def read_calls(log_path: str | Path) -> list[dict[str, Any]]:
    path = Path(log_path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


class HTTPServerProcess:
    """The HTTP variant as a subprocess; can be killed and restarted on the same port.

    The first start binds port 0 in the server itself and reads the port it got from its stdout;
    a restart asks for that port again.
    """

    def __init__(
        self,
        log_path: str | Path | None,
        port: int | None = None,
        require_header: str | None = None,
        legacy: bool = False,
        no_route: str | None = None,
        sampling: bool = False,
        asking: bool = False,
    ) -> None:
        self.log_path = log_path
        self.port = port or 0
        self.require_header = require_header
        self.legacy = legacy
        self.no_route = no_route
        self.sampling = sampling
        self.asking = asking
        self.proc: anyio.abc.Process | None = None

    @property
    def url(self) -> str:
        assert self.port, "start() the server first: its port is known once it listens"
        return f"http://127.0.0.1:{self.port}/mcp"

    async def start(self, startup_s: float = 15) -> None:
        env = dict(os.environ)
        if self.log_path:
            env["MCP_CALL_LOG"] = str(self.log_path)
        cmd = [sys.executable, "-m", "tests.fakes.mcp_server", "--transport", "http"]
        cmd += ["--port", str(self.port)]
        if self.require_header:
            cmd += ["--require-header", self.require_header]
        if self.legacy:
            cmd.append("--legacy")
        if self.no_route:
            cmd += ["--no-route", self.no_route]
        if self.sampling:
            cmd.append("--sampling")
        if self.asking:
            cmd.append("--asking")
        self.proc = await anyio.open_process(
            cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stderr=None
        )
        try:
            with anyio.fail_after(startup_s):
                line = await self._first_line()
        except TimeoutError:
            await self.stop()
            raise TimeoutError(f"test MCP server did not listen within {startup_s}s") from None
        if not line.startswith(LISTENING):
            await self.stop()
            raise RuntimeError(f"test MCP server did not start: {line!r}")
        self.port = int(line.removeprefix(LISTENING))

    async def _first_line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        data = b""
        while not data.endswith(b"\n"):
            try:
                data += await self.proc.stdout.receive()
            except anyio.EndOfStream:
                break  # exited before it listened; the caller reports what it said
        return data.decode(errors="replace").strip()

    def kill(self) -> None:
        """SIGKILL without waiting, for synchronous teardown; prefer `await stop()`."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()

    async def stop(self) -> None:
        """Kill the server (SIGKILL: no goodbye to its clients) and reap it."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self.proc is not None:
            await self.proc.aclose()
        self.proc = None


@contextlib.asynccontextmanager
async def http_server(
    log_path: str | Path | None = None, port: int | None = None, require_header: str | None = None
) -> AsyncIterator[str]:
    """Start the HTTP variant (on a port of its own choosing unless given); yields its URL."""
    server = HTTPServerProcess(log_path, port, require_header)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


if __name__ == "__main__":
    main()
