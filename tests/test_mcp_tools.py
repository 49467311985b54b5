"""MCPTools against real MCP servers (our fake over stdio and HTTP, and mcp-server-time)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import SecretStr

from bot.config import MCPServerConfig
from bot.tools.mcp import MCPTools, ToolResult
from bot.tools.mcp_format import exposed_name, object_schema, result_text
from tests.fakes.mcp_server import (
    HTTPServerProcess,
    build_server,
    http_server,
    read_calls,
    stdio_params,
)

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def stdio(log: Path, **extra: Any) -> MCPServerConfig:
    return MCPServerConfig(**stdio_params(log), **extra)


def status_of(tools: MCPTools, name: str) -> Any:
    return next(s for s in tools.status() if s.name == name)


async def test_stdio_lists_and_calls_each_tool_once(tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    async with MCPTools({"fake": stdio(log)}) as mcp:
        names = {t.name for t in mcp.tools()}
        assert {"fake__add", "fake__echo", "fake__record", "fake__crash"} <= names
        spec = mcp.find("fake__add")
        assert spec is not None and spec.server == "fake" and spec.tool == "add"
        assert spec.input_schema["type"] == "object"
        assert set(spec.input_schema["properties"]) == {"a", "b"}
        assert spec.description == "Add two integers."

        assert await mcp.call("fake__add", {"a": 2, "b": 3}) == _ok("5")
        assert await mcp.call("fake__echo", {"text": "héllo"}) == _ok("héllo")
        assert await mcp.call("fake__record", {"note": "n1"}) == _ok("recorded: n1")

        status = status_of(mcp, "fake")
        assert (status.transport, status.connected, status.error) == ("stdio", True, None)
    calls = read_calls(log)
    assert [c["tool"] for c in calls] == ["add", "echo", "record"]
    assert calls[2]["arguments"] == {"note": "n1"}


async def test_third_party_time_server() -> None:
    cfg = MCPServerConfig(
        command=sys.executable, args=["-m", "mcp_server_time", "--local-timezone", "UTC"]
    )
    async with MCPTools({"time": cfg}) as mcp:
        assert mcp.find("time__get_current_time") is not None
        result = await mcp.call("time__get_current_time", {"timezone": "Asia/Tokyo"})
    assert not result.is_error
    assert json.loads(result.text)["timezone"] == "Asia/Tokyo"


async def test_http_with_header_and_allowed_tools(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "calls.jsonl"
    caplog.set_level(logging.DEBUG)
    async with http_server(log, require_header="X-Api-Key: s3cret-value") as url:
        servers = {
            "web": MCPServerConfig(
                url=url,
                headers={"X-Api-Key": SecretStr("s3cret-value")},
                allowed_tools=["add", "echo"],
            ),
            "nokey": MCPServerConfig(url=url),  # the server answers 401 without the header
        }
        async with MCPTools(servers) as mcp:
            assert sorted(t.name for t in mcp.tools()) == ["web__add", "web__echo"]
            assert await mcp.call("web__add", {"a": 20, "b": 22}) == _ok("42")
            # Filtered-out tools are not callable, even though the server has them.
            assert (await mcp.call("web__record", {"note": "x"})).is_error
            web, nokey = status_of(mcp, "web"), status_of(mcp, "nokey")
    assert (web.transport, web.connected) == ("http", True)
    assert not nokey.connected and "401" in (nokey.error or "")
    assert [c["tool"] for c in read_calls(log)] == ["add"]
    assert "s3cret-value" not in caplog.text


async def test_unreachable_servers_do_not_block_start(tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    hang = [sys.executable, "-c", "import sys; sys.stdin.read()"]  # never answers MCP
    servers = {
        "missing": MCPServerConfig(command="/nonexistent/mcp-server"),
        "refused": MCPServerConfig(url="http://127.0.0.1:1/mcp"),
        "mute": MCPServerConfig(command=hang[0], args=hang[1:]),
        "dies": MCPServerConfig(
            command=sys.executable, args=["-c", "import sys; sys.exit('bad config: x')"]
        ),
        "remote": MCPServerConfig(url="http://127.0.0.1:1/mcp", server_side=True),
        "fake": stdio(log),
    }
    async with MCPTools(servers, connect_timeout_s=3) as mcp:
        by_name = {s.name: s for s in mcp.status()}
        assert "remote" not in by_name  # run by the Responses server, not by the bot
        assert "/nonexistent/mcp-server" in (by_name["missing"].error or "")
        assert "cannot connect" in (by_name["refused"].error or "")
        assert "within 3 s" in (by_name["mute"].error or "")
        assert "bad config: x" in (by_name["dies"].error or "")
        for name in ("missing", "refused", "mute", "dies"):
            assert not by_name[name].connected and by_name[name].tools == []
        assert by_name["fake"].connected
        assert {t.server for t in mcp.tools()} == {"fake"}
        assert await mcp.call("fake__add", {"a": 1, "b": 1}) == _ok("2")


async def test_error_results(tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    async with MCPTools({"fake": stdio(log)}, tool_timeout_s=0.5) as mcp:
        failed = await mcp.call("fake__fail", {"message": "disk full"})
        assert failed.is_error and "disk full" in failed.text

        unknown = await mcp.call("fake__nope", {})
        assert unknown.is_error and "unknown tool" in unknown.text

        bad_args = await mcp.call("fake__add", {"a": "x"})
        # The model gets the server's own words: which argument is wrong, and what is missing.
        assert bad_args.is_error and "Error executing tool add" in bad_args.text
        assert "a\n  Input should be a valid integer" in bad_args.text
        assert "b\n  Field required" in bad_args.text

        # Given up after 0.5 s, though the tool would take a minute; the model is told so.
        slow = await mcp.call("fake__slow", {"seconds": 60})
        assert slow.is_error and "timed out after 0.5 s" in slow.text

        # A timeout is not a dead server: the same session keeps working.
        assert await mcp.call("fake__add", {"a": 1, "b": 2}) == _ok("3")
        assert status_of(mcp, "fake").connected
    assert len({c["pid"] for c in read_calls(log)}) == 1


async def test_crashed_stdio_server_restarts_on_next_call(tmp_path: Path) -> None:
    log, gate = tmp_path / "calls.jsonl", tmp_path / "gate"
    params = stdio_params(log)
    params["env"]["MCP_START_GATE"] = str(gate)  # each start is logged and waits while it exists
    async with MCPTools({"fake": MCPServerConfig(**params)}) as mcp:
        crashed = await mcp.call("fake__crash", {})
        assert crashed.is_error and "fake" in crashed.text
        status = status_of(mcp, "fake")
        assert not status.connected and "restarts on the next call" in (status.error or "")
        assert status.tools  # still offered, so the model can call it and trigger the restart

        # A caller cancelled mid-restart (say, the turn was stopped) does not waste the restart:
        # the restart is held at the gate until the caller is gone.
        gate.touch()
        waiter = asyncio.create_task(mcp.call("fake__add", {"a": 1, "b": 1}))
        await _until(lambda: len(starts(log)) == 2)
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
        gate.unlink()

        assert await mcp.call("fake__record", {"note": "after"}) == _ok("recorded: after")
        status = status_of(mcp, "fake")
        assert status.connected and status.error is None
    calls = [c for c in read_calls(log) if c["tool"] != "(start)"]
    assert [c["tool"] for c in calls] == ["crash", "record"]  # nothing ran twice
    # One restart, not one per caller: the cancelled waiter's restart served the next call.
    assert starts(log) == [calls[0]["pid"], calls[1]["pid"]] and calls[0]["pid"] != calls[1]["pid"]


def starts(log: Path) -> list[int]:
    """The pids of the gated server's starts, in order."""
    return [c["pid"] for c in read_calls(log) if c["tool"] == "(start)"]


async def test_http_server_restart(tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    server = HTTPServerProcess(log)
    await server.start()
    try:
        async with MCPTools({"web": MCPServerConfig(url=server.url)}) as mcp:
            assert await mcp.call("web__add", {"a": 1, "b": 1}) == _ok("2")
            await server.stop()
            down = await mcp.call("web__record", {"note": "lost"})
            assert down.is_error
            assert not status_of(mcp, "web").connected

            # While it stays down, calls fail fast with the reason instead of hanging.
            still_down = await mcp.call("web__add", {"a": 1, "b": 1})
            assert still_down.is_error and "unavailable" in still_down.text

            await server.start()  # same port
            assert await mcp.call("web__record", {"note": "back"}) == _ok("recorded: back")
            assert status_of(mcp, "web").connected
    finally:
        await server.stop()
    assert [c["arguments"] for c in read_calls(log) if c["tool"] == "record"] == [{"note": "back"}]


async def test_legacy_http_server_restarted_while_idle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "calls.jsonl"
    server = HTTPServerProcess(log, legacy=True)
    await server.start()
    try:
        # The fake really speaks the 2025 handshake protocol (with a session id) in this mode.
        async with Client(server.url) as raw:
            assert raw.protocol_version not in MODERN_PROTOCOL_VERSIONS
        async with MCPTools({"old": MCPServerConfig(url=server.url)}) as mcp:
            assert await mcp.call("old__record", {"note": "one"}) == _ok("recorded: one")
            await server.stop()
            await server.start()  # the new process does not know the old session id
            # The stale session is answered 404 before the tool runs, so it is retried once.
            assert await mcp.call("old__record", {"note": "two"}) == _ok("recorded: two")
            assert "no longer knows the session" in caplog.text
    finally:
        await server.stop()
    assert [c["arguments"]["note"] for c in read_calls(log)] == ["one", "two"]


async def test_a_404_that_is_not_a_forgotten_session_never_runs_a_call_twice(
    tmp_path: Path,
) -> None:
    """Only a call whose own answer says the session is unknown is retried: a gateway's 404
    for one tool, or a 404 seen earlier on the connection, must not make another failed call
    (one that ran) run again."""
    log = tmp_path / "calls.jsonl"
    server = HTTPServerProcess(log, no_route="echo")
    await server.start()
    try:
        async with MCPTools({"web": MCPServerConfig(url=server.url)}) as mcp:
            routed = await mcp.call("web__echo", {"text": "hi"})
            assert routed.is_error and "no route to tool echo" in routed.text
            assert status_of(mcp, "web").connected  # the session itself was fine
            rejected = await mcp.call("web__reject", {"message": "quota exceeded"})
            assert rejected.is_error and "quota exceeded" in rejected.text
    finally:
        await server.stop()
    assert [c["tool"] for c in read_calls(log)] == ["reject"]


async def test_concurrent_calls_from_other_tasks(tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    async with MCPTools({"fake": stdio(log)}) as mcp:
        release = tmp_path / "release"
        held = asyncio.create_task(mcp.call("fake__hold_until", {"path": str(release)}))
        adds = [asyncio.create_task(mcp.call("fake__add", {"a": i, "b": i})) for i in range(5)]
        results = await asyncio.gather(*adds)  # would never finish if the held call blocked them
        assert [r.text for r in results] == ["0", "2", "4", "6", "8"]
        assert not held.done()
        release.touch()
        assert (await held) == _ok(f"released: {release}")


async def test_same_tool_names_on_two_servers(tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    long_name = "a-very-long-server-name-" + "x" * 50
    servers = {
        "one": stdio(log),
        "x.y": stdio(log),
        "x_y": stdio(log),  # sanitises to the same prefix as "x.y"
        long_name: stdio(log, allowed_tools=["echo"]),
    }
    async with MCPTools(servers) as mcp:
        specs = mcp.tools()
        names = [s.name for s in specs]
        per_server = len(await build_server("count").list_tools())
        assert len(names) == len(set(names)) == per_server * 3 + 1
        assert all(NAME_RE.match(n) for n in names)
        assert "one__add" in names and "x_y__add" in names
        adds = [s for s in specs if s.tool == "add" and s.server in ("x.y", "x_y")]
        assert len({s.name for s in adds}) == 2
        for spec in adds:
            assert await mcp.call(spec.name, {"a": 1, "b": 2}) == _ok("3")
        (long_spec,) = [s for s in specs if s.server == long_name]
        assert len(long_spec.name) == 64
        assert await mcp.call(long_spec.name, {"text": "ok"}) == _ok("ok")


async def test_server_log_messages_go_to_the_bot_log_at_their_level(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.tools.mcp.server")
    # The bot opts in from "info" up (the 2026 protocol sends only what a request asks for).
    levels = {
        "info": logging.INFO,
        "notice": logging.INFO,
        "warning": logging.WARNING,
        "error": logging.ERROR,
        "alert": logging.CRITICAL,
    }
    async with MCPTools(
        {"fake": MCPServerConfig(**stdio_params(tmp_path / "calls.jsonl", logs=True))}
    ) as mcp:
        await mcp.call("fake__log_at", {"levels": list(levels)})
    seen = {r.getMessage(): r.levelno for r in caplog.records if r.name == "bot.tools.mcp.server"}
    assert seen == {f"[fake] {name} from the server": level for name, level in levels.items()}


def test_exposed_name_rule() -> None:
    assert exposed_name("srv", "get time") == "srv__get_time"
    first = exposed_name("x.y", "add")
    assert first == "x_y__add"
    second = exposed_name("x_y", "add", taken=[first])
    assert second != first and second.startswith("x_y__add_") and NAME_RE.match(second)
    assert second == exposed_name("x_y", "add", taken=[first])  # stable
    long = exposed_name("s" * 40, "t" * 40)
    assert len(long) == 64 and NAME_RE.match(long)
    assert long != exposed_name("s" * 40, "t" * 39 + "u")


def test_schema_and_result_text() -> None:
    assert object_schema(None) == {"type": "object", "properties": {}}
    assert object_schema({"properties": {"a": {}}})["type"] == "object"

    structured = types.CallToolResult(content=[], structured_content={"temp": 21})
    assert json.loads(result_text(structured)) == {"temp": 21}

    texts = types.CallToolResult(
        content=[
            types.TextContent(type="text", text="a"),
            types.TextContent(type="text", text="b"),
        ],
        structured_content={"ignored": True},
    )
    assert result_text(texts) == "a\nb"

    big = types.CallToolResult(content=[types.TextContent(type="text", text="x" * 50_000)])
    text = result_text(big)
    assert len(text) < 20_200 and "truncated" in text

    empty_error = types.CallToolResult(content=[], is_error=True)
    assert result_text(empty_error) == "the tool reported an error without details"
    assert result_text(types.CallToolResult(content=[])) == "(no output)"


async def _until(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_idle_stdio_server_killed_is_restarted_before_the_next_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "calls.jsonl"
    caplog.set_level(logging.INFO)
    async with MCPTools({"fake": stdio(log)}) as mcp:
        assert await mcp.call("fake__add", {"a": 1, "b": 1}) == _ok("2")
        os.kill(read_calls(log)[0]["pid"], signal.SIGKILL)  # dies while idle
        # Noticed without any call: the session watches its transport.
        await _until(lambda: not status_of(mcp, "fake").connected)
        assert "'fake' disconnected (the process exited)" in caplog.text
        # So the next call goes to a fresh process instead of failing half-way.
        assert await mcp.call("fake__record", {"note": "after-kill"}) == _ok("recorded: after-kill")
        assert status_of(mcp, "fake").connected
    calls = read_calls(log)
    assert [c["tool"] for c in calls] == ["add", "record"]  # ran exactly once
    assert calls[0]["pid"] != calls[1]["pid"]


async def test_tools_list_changed_is_followed(tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    async with MCPTools({"fake": stdio(log)}) as mcp:
        assert mcp.find("fake__newt") is None
        assert await mcp.call("fake__grow", {"name": "newt", "answer": "ribbit"}) == _ok(
            "added newt"
        )
        # The re-list is done by the time the call that caused it returns.
        spec = mcp.find("fake__newt")
        assert spec is not None and "ribbit" in spec.description
        assert await mcp.call("fake__newt", {}) == _ok("ribbit")
        assert "fake__newt" in status_of(mcp, "fake").tools


async def test_prompts_list_changed_is_followed(tmp_path: Path) -> None:
    async with MCPTools({"fake": stdio(tmp_path / "calls.jsonl")}) as mcp:
        assert mcp.find_prompt("fake/haiku") is None
        await mcp.call("fake__teach", {"name": "haiku", "text": "Write a haiku."})
        prompt = mcp.find_prompt("fake/haiku")
        assert prompt is not None and prompt.description == "Asks: Write a haiku."
        assert await mcp.get_prompt(prompt, {}) == "Write a haiku."
        assert "haiku" in status_of(mcp, "fake").prompts


async def test_stderr_is_logged_at_info_redacted_and_rate_limited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.tools.mcp_watch import STDERR_BURST

    log = tmp_path / "calls.jsonl"
    params = stdio_params(log)
    cfg = MCPServerConfig(**{**params, "env": {**params["env"], "API_TOKEN": "tok-12345"}})
    caplog.set_level(logging.INFO, logger="bot.tools.mcp.stderr")
    lines = [f"line {i} token=tok-12345" for i in range(STDERR_BURST * 3)]
    async with MCPTools({"fake": cfg}) as mcp:
        assert not (await mcp.call("fake__shout", {"lines": lines})).is_error

        def logged() -> list[logging.LogRecord]:
            return [r for r in caplog.records if r.name == "bot.tools.mcp.stderr"]

        await _until(lambda: any("line 0 " in r.getMessage() for r in logged()))
    await _until(lambda: any("not logged" in r.getMessage() for r in logged()))
    records = logged()
    assert all(r.levelno == logging.INFO for r in records)
    assert "tok-12345" not in caplog.text and "line 0 token=***" in caplog.text
    shown = [r for r in records if r.getMessage().startswith("[fake] line ")]
    assert STDERR_BURST <= len(shown) < len(lines)


def _ok(text: str) -> ToolResult:
    return ToolResult(text=text, is_error=False)


async def test_the_bots_resource_reader_shares_no_rule_or_grant_with_a_same_named_tool(
    tmp_path: Path,
) -> None:
    from bot.config import ApprovalLists
    from bot.core.approvals import ApprovalBroker, ApprovalPolicy, ApproverRule
    from bot.core.events import ApprovalRequested, ToolCallFinished
    from bot.core.state import ConversationKey, TurnRequest
    from bot.core.tool_calls import ToolCall, ToolExecutor
    from bot.store.sqlite import Store
    from tests.test_approvals import Asked

    turn = TurnRequest(
        key=ConversationKey(guild_id=1, channel_id=2, user_id=3),
        user_id=3,
        user_name="Ann",
        text="",
    )
    server = MCPServerConfig(**stdio_params(tmp_path / "calls.jsonl", resources=True))
    async with MCPTools({"fake": server}) as mcp, Store.open(tmp_path / "a.db") as store:
        await mcp.call("fake__grow", {"name": "read_resource", "answer": "the server's own"})
        (reader,) = [s for s in mcp.tools() if s.description.startswith("Read a resource")]
        (own,) = [s for s in mcp.tools() if s.tool == "read_resource" and s != reader]
        broker = ApprovalBroker(store, timeout_s=10, rules={"fake": ApproverRule()})
        gate = Asked(broker)

        def run(executor: ToolExecutor, spec: Any, arguments: dict[str, Any]) -> Any:
            call_id = f"c-{time.monotonic_ns()}"
            call = ToolCall(call_id=call_id, name=spec.name, arguments=json.dumps(arguments))

            async def events() -> list[Any]:
                return [event async for event in executor.run(call, turn)]

            return asyncio.create_task(events())

        async def decided(task: Any, action: Any) -> list[Any]:
            opened = asyncio.ensure_future(gate.opened.get())
            await asyncio.wait({task, opened}, return_when=asyncio.FIRST_COMPLETED)
            if not opened.done():
                opened.cancel()
                raise AssertionError(f"ran without asking: {task.result()[-1]}")
            await broker.click(opened.result(), user_id=3, is_admin=False, action=action)
            return await asyncio.wait_for(task, 30)

        # `never: [read_resource]` names the server's own tool, which runs unasked ...
        listed = ToolExecutor(
            mcp, {"fake": ApprovalPolicy(ApprovalLists(never=["read_resource"]))}, gate
        )
        ran = await asyncio.wait_for(run(listed, own, {}), 30)
        assert not any(isinstance(e, ApprovalRequested) for e in ran)
        assert ran[-1].output == "the server's own"
        # ... and not the bot's reader, which only shares the name: it asks.
        read = await decided(run(listed, reader, {"uri": "note://hello"}), "always")
        assert "hello from the note" in read[-1].output
        # "Always" for the reader does not cover the server's own tool of that name,
        asking = ToolExecutor(mcp, {"fake": ApprovalPolicy("always")}, gate)
        refused = await decided(run(asking, own, {}), "deny")
        assert isinstance(refused[-1], ToolCallFinished) and refused[-1].outcome == "denied"
        # while the reader's own grant holds.
        again = await asyncio.wait_for(run(asking, reader, {"uri": "note://hello"}), 30)
        assert "hello from the note" in again[-1].output and gate.opened.empty()


async def test_rules_name_the_bots_resource_reader_read_resource(tmp_path: Path) -> None:
    from bot.config import ApprovalLists
    from bot.core.approvals import ApprovalBroker, ApprovalPolicy, ApproverRule
    from bot.core.events import ApprovalRequested
    from bot.core.state import ConversationKey, TurnRequest
    from bot.core.tool_calls import ToolCall, ToolExecutor
    from bot.store.sqlite import Store
    from tests.test_approvals import Asked

    turn = TurnRequest(
        key=ConversationKey(guild_id=1, channel_id=2, user_id=3), user_id=3, user_name="A", text=""
    )
    server = MCPServerConfig(**stdio_params(tmp_path / "calls.jsonl", resources=True))
    async with MCPTools({"fake": server}) as mcp, Store.open(tmp_path / "a.db") as store:
        reader = mcp.find("fake__read_resource")
        assert reader is not None
        gate = Asked(ApprovalBroker(store, timeout_s=10, rules={"fake": ApproverRule()}))
        policies = {"fake": ApprovalPolicy(ApprovalLists(never=["read_resource"]))}
        call = ToolCall(call_id="c-1", name=reader.name, arguments='{"uri": "note://hello"}')
        events = [e async for e in ToolExecutor(mcp, policies, gate).run(call, turn)]
    assert not any(isinstance(e, ApprovalRequested) for e in events) and gate.opened.empty()
    assert "hello from the note" in events[-1].output
