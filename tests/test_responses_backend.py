"""The responses backend against the scripted OpenAI-compatible server, with in-test tools and gate."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.backends.responses import ResponsesBackend
from bot.backends.responses_events import Round
from bot.backends.responses_stream import FRESH_START
from bot.config import ApprovalLists, LLMConfig, MCPServerConfig
from bot.core.approvals import (
    ApprovalPolicy,
    ApprovalRequest,
    Decision,
    DecisionStatus,
    grant_name,
)
from bot.core.events import (
    ApprovalRequested,
    ApprovalResolved,
    Notice,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    Usage,
)
from bot.core.state import ConversationKey, ConversationState, TurnRequest
from bot.core.tool_calls import ToolExecutor
from tests.fakes.llm import (
    Cut,
    Fault,
    McpApprovalRequest,
    McpCall,
    ScriptedLLM,
    Stall,
    Text,
    ToolCall,
)
from tests.module_llm import module_llm  # noqa: F401 (this module's `llm`)

KEY = ConversationKey(guild_id=1, channel_id=2, user_id=3)
SCHEMA = {"type": "object", "properties": {"path": {"type": "string"}}}


# -- in-test tools and approval gate ----------------------------------------------------
@dataclass(frozen=True)
class Spec:
    name: str
    server: str
    tool: str
    description: str = "a test tool"
    input_schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class Result:
    text: str
    is_error: bool = False


class Box:
    """Two bot-side servers: `calc` (never asks) and `files` (always asks)."""

    def __init__(self) -> None:
        self.specs = [Spec("calc__add", "calc", "add"), Spec("files__read", "files", "read")]
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def tools(self) -> list[Any]:
        return [Spec(s.name, s.server, s.tool, s.description, SCHEMA) for s in self.specs]

    def find(self, name: str) -> Any:
        return next((s for s in self.specs if s.name == name), None)

    async def call(self, name: str, arguments: dict[str, Any], **_: Any) -> Result:
        self.calls.append((name, arguments))
        if name == "calc__add":
            return Result(str(arguments["a"] + arguments["b"]))
        return Result(f"contents of {arguments['path']}")


class Gate:
    """Answers every approval with `status`; remembers what it was asked."""

    def __init__(
        self, status: DecisionStatus = "approved", granted: set[str] | None = None
    ) -> None:
        self.status = status
        self.granted = granted or set()
        self.opened: list[ApprovalRequest] = []
        self.positions: list[tuple[int, dict[str, Any]]] = []  # where the turn stood, as kept

    async def preapproved(self, key: ConversationKey, tool: str) -> bool:
        return tool in self.granted

    async def open(self, request: ApprovalRequest) -> int:
        self.opened.append(request)
        return len(self.opened)

    async def wait(self, approval_id: int) -> Decision:
        return Decision(status=self.status, decided_by=99)

    async def keep_position(self, approval_id: int, position: dict[str, Any]) -> None:
        self.positions.append((approval_id, position))


# -- fixtures and helpers ---------------------------------------------------------------
@pytest.fixture(autouse=True)
def _fresh(llm: ScriptedLLM) -> None:
    llm.clear()


DOCS = MCPServerConfig(
    url="http://docs.example/mcp",
    server_side=True,
    require_approval=ApprovalLists(never=["search"]),
    headers={"Authorization": SecretStr("Bearer docs-token")},
)


@asynccontextmanager
async def backend(
    base_url: str,
    *,
    state: str = "server",
    gate: Gate | None = None,
    box: Box | None = None,
    servers: dict[str, MCPServerConfig] | None = None,
    max_tool_rounds: int = 8,
    truncation: str = "auto",
    request_timeout_s: float = 120,
) -> AsyncIterator[ResponsesBackend]:
    config = LLMConfig(
        backend="responses",
        model="test-model",
        base_url=base_url,
        api_key=SecretStr("test"),
        state=state,  # type: ignore[arg-type]
        system_prompt="Be brief.",
        max_tool_rounds=max_tool_rounds,
        truncation=truncation,  # type: ignore[arg-type]
        request_timeout_s=request_timeout_s,
    )
    policies = {"calc": ApprovalPolicy("never"), "files": ApprovalPolicy("always")}
    tools = ToolExecutor(box or Box(), policies, gate or Gate())
    made = ResponsesBackend(config, tools=tools, servers=servers or {})
    try:
        yield made
    finally:
        await made.aclose()


async def turn(
    made: ResponsesBackend, text: str, state: ConversationState | None = None
) -> list[TurnEvent]:
    request = TurnRequest(key=KEY, user_id=3, user_name="ann", text=text)
    return [
        e async for e in made.run_turn(state or ConversationState(backend="responses"), request)
    ]


def text_of(events: list[TurnEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def completed(events: list[TurnEvent]) -> TurnCompleted:
    assert sum(isinstance(e, TurnCompleted | TurnFailed) for e in events) == 1
    last = events[-1]
    assert isinstance(last, TurnCompleted), last
    return last


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


# -- text and state ---------------------------------------------------------------------
async def test_text_streams_and_usage_is_recorded(llm: ScriptedLLM) -> None:
    answer = "Hello there, friend of mine!"
    llm.script("hello", Text(answer, chunk_size=6))
    async with backend(llm.base_url) as made:
        events = await turn(made, "hello bot")
    done = completed(events)
    # The deltas of one network read come as one (bot/backends/batches.py): only text, in order.
    assert all(type(e) is TextDelta for e in events[:-1])
    assert "".join(e.text for e in events[:-1] if isinstance(e, TextDelta)) == answer
    (sent,) = llm.requests_for("hello")
    body = sent.body
    assert body["input"] == [user("hello bot")] and body["stream"] is True
    assert body["instructions"] == "Be brief." and "previous_response_id" not in body
    expected = Usage(
        input_tokens=len(json.dumps(body["input"])) // 4, output_tokens=len(answer) // 4
    )
    assert done.usage == expected and done.model == "test-model"
    assert done.state.backend == "responses" and done.state.previous_response_id
    assert done.state.previous_response_id.startswith("resp_") and done.state.history == ()


async def test_state_server_sends_previous_id_and_only_new_input(llm: ScriptedLLM) -> None:
    llm.script("first-q", Text("A1"))
    llm.script("second-q", Text("A2"))
    async with backend(llm.base_url) as made:
        one = completed(await turn(made, "first-q?"))
        two = completed(await turn(made, "second-q?", one.state))
    (sent,) = llm.requests_for("second-q")
    assert sent.body["previous_response_id"] == one.state.previous_response_id
    assert sent.body["input"] == [user("second-q?")]
    assert two.state.previous_response_id not in (None, one.state.previous_response_id)


async def test_state_local_sends_history_without_previous_id(llm: ScriptedLLM) -> None:
    llm.script("first-q", Text("A1"))
    llm.script("second-q", Text("A2"))
    async with backend(llm.base_url, state="local") as made:
        one = completed(await turn(made, "first-q?"))
        assert one.state.previous_response_id is None
        two = completed(await turn(made, "second-q?", one.state))
    (sent,) = llm.requests_for("second-q")
    assert "previous_response_id" not in sent.body
    exchange = [user("first-q?"), {"role": "assistant", "content": "A1"}]
    assert sent.body["input"] == [*exchange, user("second-q?")]
    assert two.state.history == (
        *exchange,
        user("second-q?"),
        {"role": "assistant", "content": "A2"},
    )


# -- bot-side function tools ------------------------------------------------------------
async def test_function_tool_approved_runs_and_answers(llm: ScriptedLLM) -> None:
    call = ToolCall("files__read", {"path": "a.txt"}, call_id="call_r1")
    llm.script("read it", [Text("Looking. "), call], Text("The file says hi."))
    box, gate = Box(), Gate("approved")
    async with backend(llm.base_url, box=box, gate=gate) as made:
        events = await turn(made, "read it please")
    done = completed(events)
    assert text_of(events) == "Looking. The file says hi."
    tool_events = [e for e in events if not isinstance(e, TextDelta | TurnCompleted)]
    assert [type(e) for e in tool_events] == [
        ApprovalRequested,
        ApprovalResolved,
        ToolCallStarted,
        ToolCallFinished,
    ]
    assert {e.call_id for e in tool_events} == {"call_r1"}  # type: ignore[union-attr]
    assert tool_events[-1] == ToolCallFinished(
        call_id="call_r1", server="files", tool="read", outcome="done", output="contents of a.txt"
    )
    assert box.calls == [("files__read", {"path": "a.txt"})]
    assert gate.opened[0].arguments == {"path": "a.txt"} and gate.opened[0].tool == "read"
    first, second = llm.requests_for("read it")
    assert [t["name"] for t in first.body["tools"]] == ["calc__add", "files__read"]
    assert "tool_choice" not in first.body
    assert second.body["previous_response_id"] != first.body.get("previous_response_id")
    assert second.body["input"] == [
        {"type": "function_call_output", "call_id": "call_r1", "output": "contents of a.txt"}
    ]
    assert done.state.previous_response_id not in (None, second.body["previous_response_id"])
    assert done.usage.input_tokens > 0 and done.usage.output_tokens > 0


async def test_function_tool_denied_tells_the_model(llm: ScriptedLLM) -> None:
    llm.script(
        "read it", ToolCall("files__read", {"path": "b.txt"}, "call_d"), Text("OK, not read.")
    )
    box = Box()
    async with backend(llm.base_url, box=box, gate=Gate("denied")) as made:
        events = await turn(made, "read it please")
    completed(events)
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert [e.outcome for e in finished] == ["denied"] and box.calls == []
    output = llm.requests_for("read it")[1].body["input"][0]
    assert output["call_id"] == "call_d" and "declined" in output["output"]
    assert not any(isinstance(e, ToolCallStarted) for e in events)


async def test_state_local_tool_round_sends_all_items_and_keeps_them(llm: ScriptedLLM) -> None:
    llm.script("add", ToolCall("calc__add", {"a": 2, "b": 3}, "call_a"), Text("It is 5."))
    async with backend(llm.base_url, state="local") as made:
        done = completed(await turn(made, "add 2 and 3"))
    first, second = llm.requests_for("add")
    call_item = {
        "type": "function_call",
        "call_id": "call_a",
        "name": "calc__add",
        "arguments": '{"a": 2, "b": 3}',
    }
    answer = {"type": "function_call_output", "call_id": "call_a", "output": "5"}
    assert "previous_response_id" not in second.body
    assert second.body["input"] == [user("add 2 and 3"), call_item, answer]
    assert done.state.history == (
        user("add 2 and 3"),
        call_item,
        answer,
        {"role": "assistant", "content": "It is 5."},
    )


async def test_last_round_forbids_tools(llm: ScriptedLLM) -> None:
    add = ToolCall("calc__add", {"a": 1, "b": 1})
    llm.script("loop", add, add, Text("Stopping."))
    async with backend(llm.base_url, max_tool_rounds=2) as made:
        events = await turn(made, "loop forever")
    completed(events)
    assert [r.body.get("tool_choice") for r in llm.requests_for("loop")] == [None, None, "none"]


# -- server-side MCP ---------------------------------------------------------------------
async def test_server_side_approval_approved(llm: ScriptedLLM) -> None:
    ask = McpApprovalRequest("delete_page", {"page": 7}, server_label="docs", id="mcpr_1")
    ran = McpCall("delete_page", {"page": 7}, output="deleted", server_label="docs")
    llm.script("wiki", ask, [ran, Text("Deleted.")])
    gate = Gate("approved")
    async with backend(llm.base_url, gate=gate, servers={"docs": DOCS}) as made:
        events = await turn(made, "wiki: delete page 7")
    completed(events)
    first, second = llm.requests_for("wiki")
    assert first.body["tools"][-1] == {
        "type": "mcp",
        "server_label": "docs",
        "server_url": "http://docs.example/mcp",
        "require_approval": {"never": {"tool_names": ["search"]}},
        "headers": {"Authorization": "Bearer docs-token"},
    }
    assert second.body["input"] == [
        {"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": True}
    ]
    assert second.body["previous_response_id"]
    # Started once when the server begins the call, again when its arguments are complete.
    requested, resolved, running, started, finished = events[:5]
    assert isinstance(running, ToolCallStarted) and running.call_id == started.call_id
    assert requested == ApprovalRequested(
        call_id="mcpr_1",
        approval_id=1,
        server="docs",
        tool="delete_page",
        arguments={"page": 7},
        requester_id=3,
    )
    assert isinstance(resolved, ApprovalResolved) and resolved.approved
    assert isinstance(started, ToolCallStarted) and started.arguments == {"page": 7}
    # The final line comes with `mcp_call.completed`, before the item that holds the output.
    assert isinstance(finished, ToolCallFinished) and finished.outcome == "done"
    assert text_of(events) == "Deleted."


async def test_server_side_approval_denied_in_local_state(llm: ScriptedLLM) -> None:
    ask = McpApprovalRequest("delete_page", {"page": 7}, server_label="docs", id="mcpr_2")
    llm.script("wiki", ask, Text("I did not delete it."))
    async with backend(
        llm.base_url, state="local", gate=Gate("denied"), servers={"docs": DOCS}
    ) as made:
        events = await turn(made, "wiki: delete page 7")
    done = completed(events)
    first, second = llm.requests_for("wiki")
    # The server holds the pending request: the answer continues it even with state local.
    assert second.body["input"] == [
        {"type": "mcp_approval_response", "approval_request_id": "mcpr_2", "approve": False}
    ]
    assert second.body["previous_response_id"] and "previous_response_id" not in first.body
    denied = [e for e in events if isinstance(e, ToolCallFinished)]
    assert [(e.call_id, e.outcome) for e in denied] == [("mcpr_2", "denied")]
    assert "declined" in denied[0].output
    assert done.state.history[-1] == {"role": "assistant", "content": "I did not delete it."}


async def test_server_side_approval_already_granted_asks_nobody(llm: ScriptedLLM) -> None:
    ask = McpApprovalRequest("delete_page", {"page": 8}, server_label="docs", id="mcpr_3")
    llm.script("wiki", ask, Text("Deleted."))
    gate = Gate("denied", granted={grant_name("docs", "delete_page")})
    async with backend(llm.base_url, gate=gate, servers={"docs": DOCS}) as made:
        events = await turn(made, "wiki: delete page 8")
    completed(events)
    assert gate.opened == [] and events[:-1] == [TextDelta(text="Deleted.")]
    assert llm.requests_for("wiki")[1].body["input"][0]["approve"] is True


async def test_mcp_calls_become_tool_events(llm: ScriptedLLM) -> None:
    llm.script(
        "search",
        [
            McpCall("litellm-search", {"q": "x"}, output="3 hits"),
            McpCall("litellm-broken", {}, error="boom"),
            Text("Found."),
        ],
    )
    async with backend(llm.base_url) as made:
        events = await turn(made, "search the docs")
    completed(events)
    tool_events = [e for e in events if isinstance(e, ToolCallStarted | ToolCallFinished)]
    # Running as soon as the server starts each call (again once its arguments are complete:
    # the audit line digests them), final when `mcp_call.completed`/`failed` says so.
    assert [(type(e).__name__, e.tool) for e in tool_events] == [
        ("ToolCallStarted", "litellm-search"),
        ("ToolCallStarted", "litellm-search"),
        ("ToolCallFinished", "litellm-search"),
        ("ToolCallStarted", "litellm-broken"),
        ("ToolCallFinished", "litellm-broken"),
    ]
    with_arguments, ok, bad = tool_events[1], tool_events[2], tool_events[4]
    assert isinstance(with_arguments, ToolCallStarted) and with_arguments.arguments == {"q": "x"}
    assert isinstance(ok, ToolCallFinished) and isinstance(bad, ToolCallFinished)
    assert (ok.outcome, ok.server) == ("done", "litellm")
    assert bad.outcome == "failed"
    assert tool_events[0].call_id == ok.call_id != bad.call_id
    assert len(llm.requests_for("search")) == 1


async def test_raw_function_call_for_a_proxy_run_tool_is_ignored(llm: ScriptedLLM) -> None:
    llm.script(
        "proxy",
        [
            ToolCall("litellm-search", {"q": "x"}),
            McpCall("litellm-search", {"q": "x"}, output="3 hits"),
            Text("Found it."),
        ],
    )
    box = Box()
    async with backend(llm.base_url, box=box) as made:
        events = await turn(made, "proxy search")
    completed(events)
    assert len(llm.requests_for("proxy")) == 1 and box.calls == []
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert [(e.tool, e.outcome) for e in finished] == [("litellm-search", "done")]


async def test_unknown_function_without_mcp_call_fails_back_to_model(llm: ScriptedLLM) -> None:
    llm.script("nope", ToolCall("nope_tool", {}, "call_n"), Text("That tool does not exist."))
    async with backend(llm.base_url) as made:
        events = await turn(made, "nope please")
    completed(events)
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert [(e.call_id, e.outcome) for e in finished] == [("call_n", "failed")]
    output = llm.requests_for("nope")[1].body["input"][0]
    assert output["call_id"] == "call_n" and "no tool named" in output["output"]


# -- failures ----------------------------------------------------------------------------
async def test_unknown_previous_id_starts_fresh(llm: ScriptedLLM) -> None:
    llm.script("again", Text("Fresh answer."))
    stale = ConversationState(backend="responses", previous_response_id="resp_gone")
    async with backend(llm.base_url) as made:
        events = await turn(made, "again?", stale)
    done = completed(events)
    assert events[0] == Notice(text=FRESH_START)
    assert [e for e in events if isinstance(e, Notice)] == [events[0]]
    assert text_of(events) == "Fresh answer."
    first, second = llm.requests_for("again")
    assert first.body["previous_response_id"] == "resp_gone"
    assert "previous_response_id" not in second.body and second.body["input"] == [user("again?")]
    assert done.state.previous_response_id not in (None, "resp_gone")


async def test_server_errors_are_retried(llm: ScriptedLLM) -> None:
    llm.script("flaky", Fault(500), Fault(500), Text("ok now"))
    async with backend(llm.base_url) as made:
        events = await turn(made, "flaky?")
    completed(events)
    assert text_of(events) == "ok now" and len(llm.requests_for("flaky")) == 3


async def test_cut_after_text_fails_without_retry(llm: ScriptedLLM) -> None:
    llm.script("cut", Cut("This answer will be cut off midway.", after_chars=12), Text("never"))
    async with backend(llm.base_url) as made:
        events = await turn(made, "cut me")
    assert text_of(events) == "This answer "
    assert isinstance(events[-1], TurnFailed) and "connection" in events[-1].message
    assert len(llm.requests_for("cut")) == 1


async def test_a_server_side_tool_that_outlasts_the_timeout_is_not_sent_again(
    llm: ScriptedLLM,
) -> None:
    started = McpCall("send_email", {"to": "ann"}, output="sent", server_label="docs")
    # The server goes quiet while its tool runs; a retry would be answered (and run it again).
    llm.script("mail", Stall(30, during=started), Text("Sent twice."))
    async with backend(llm.base_url, servers={"docs": DOCS}, request_timeout_s=1) as made:
        events = await turn(made, "mail ann")
    assert len(llm.requests_for("mail")) == 1
    failed = events[-1]
    assert isinstance(failed, TurnFailed), failed
    assert "`docs.send_email`" in failed.message and "may have run" in failed.message
    # Not for another model either: llm.fallback_models would run it again.
    assert not failed.transient and not failed.retryable
    assert text_of(events) == ""


# -- response.failed / error events (the scripted server cannot send these yet) -----------
def _sse(*events: dict[str, Any]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def _created(rid: str) -> dict[str, Any]:
    return {"type": "response.created", "response": {"id": rid, "status": "in_progress"}}


def _delta(text: str) -> dict[str, Any]:
    return {"type": "response.output_text.delta", "item_id": "msg_1", "delta": text}


def _failed(rid: str, code: str) -> dict[str, Any]:
    error = {"code": code, "message": "internal detail 0xdeadbeef"}
    return {"type": "response.failed", "response": {"id": rid, "status": "failed", "error": error}}


def _completed(rid: str) -> dict[str, Any]:
    usage = {"input_tokens": 5, "output_tokens": 2}
    return {
        "type": "response.completed",
        "response": {"id": rid, "status": "completed", "usage": usage},
    }


@asynccontextmanager
async def canned(*bodies: bytes) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A one-route server that answers each request with the next canned SSE body."""
    queue, seen = deque(bodies), []

    async def respond(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.Response(body=queue.popleft(), content_type="text/event-stream")

    app = web.Application()
    app.router.add_post("/v1/responses", respond)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1", seen
    finally:
        await runner.cleanup()


async def test_response_failed_after_text_is_a_turn_failure() -> None:
    body = _sse(_created("resp_f"), _delta("Partial"), _failed("resp_f", "server_error"))
    async with canned(body) as (url, seen), backend(url) as made:
        events = await turn(made, "fail please")
    assert events[:-1] == [TextDelta(text="Partial")] and len(seen) == 1
    failed = events[-1]
    assert isinstance(failed, TurnFailed) and failed.retryable
    assert "0xdeadbeef" not in failed.message and "Try again" in failed.message


async def test_failure_events_before_text_follow_the_retry_rule() -> None:
    bodies = (
        _sse(_created("resp_1"), _failed("resp_1", "rate_limit_exceeded")),
        _sse({"type": "error", "code": "server_error", "message": "hiccup"}),
        _sse(_created("resp_3"), _delta("Fine."), _completed("resp_3")),
        _sse(_created("resp_4"), _failed("resp_4", "invalid_prompt")),
    )
    async with canned(*bodies) as (url, seen), backend(url) as made:
        events = await turn(made, "retry please")
        done = completed(events)
        assert text_of(events) == "Fine." and len(seen) == 3
        assert done.usage == Usage(input_tokens=5, output_tokens=2)
        assert done.state.previous_response_id == "resp_3"
        refused = await turn(made, "refuse please")
    assert len(seen) == 4 and isinstance(refused[-1], TurnFailed)
    assert not refused[-1].retryable and "rephras" in refused[-1].message


def _function_call(call_id: str) -> dict[str, Any]:
    item = {
        "type": "function_call",
        "id": f"fc_{call_id}",
        "call_id": call_id,
        "name": "calc__add",
        "arguments": '{"a": 1, "b": 2}',
    }
    return {"type": "response.output_item.done", "item": item}


async def test_an_mcp_call_event_alone_stops_retries() -> None:
    """A proxy may report the call only by its progress events, without the item."""
    cut = _sse(_created("resp_m"), {"type": "response.mcp_call.in_progress", "item_id": "mcp_1"})
    again = _sse(_created("resp_n"), _delta("Ran twice."), _completed("resp_n"))
    async with canned(cut, again) as (url, seen), backend(url) as made:
        events = await turn(made, "mail please")
    assert len(seen) == 1
    failed = events[-1]
    assert isinstance(failed, TurnFailed) and "may have run" in failed.message
    assert not failed.transient


async def test_a_request_carrying_an_approval_is_not_sent_again_after_a_break() -> None:
    """The server runs an approved tool on receiving the answer, maybe before saying anything."""
    ask = {
        "type": "mcp_approval_request",
        "id": "mcpr_1",
        "server_label": "docs",
        "name": "send_email",
        "arguments": "{}",
    }
    asked = _sse(
        _created("resp_a"), {"type": "response.output_item.done", "item": ask}, _completed("resp_a")
    )
    broken = _sse(_created("resp_b"))  # the stream ends without a word
    again = _sse(_created("resp_c"), _delta("Sent twice."), _completed("resp_c"))
    async with (
        canned(asked, broken, again) as (url, seen),
        backend(url, gate=Gate("approved"), servers={"docs": DOCS}) as made,
    ):
        events = await turn(made, "mail please")
    assert len(seen) == 2 and seen[1]["input"][0]["approve"] is True
    failed = events[-1]
    assert isinstance(failed, TurnFailed), failed
    assert "`docs.send_email`" in failed.message and "may have run" in failed.message


async def test_an_answer_without_an_id_keeps_and_names_the_tools_that_ran() -> None:
    first = _sse(_created("resp_1"), _function_call("call_1"), _completed("resp_1"))
    # The second answer asks for another call, but never says its id: its results cannot be
    # sent back. The calls that ran must not be forgotten.
    no_id = _sse(_function_call("call_2"), {"type": "response.completed", "response": {}})
    box = Box()
    async with canned(first, no_id) as (url, seen), backend(url, box=box) as made:
        events = await turn(made, "add please")
    assert len(seen) == 2 and len(box.calls) == 2
    failed = events[-1]
    assert isinstance(failed, TurnFailed), failed
    assert "did not identify" in failed.message and "`calc.add`" in failed.message
    # The first response got its answer in the second request; the next turn sends it again.
    assert failed.state is not None and failed.state.previous_response_id == "resp_1"
    (answer,) = failed.state.history
    assert answer["call_id"] == "call_1" and answer["output"] == "3"


async def test_an_answer_without_an_id_keeps_local_history_of_the_tools_that_ran() -> None:
    ask = {
        "type": "mcp_approval_request",
        "id": "mcpr_1",
        "server_label": "docs",
        "name": "search",
        "arguments": "{}",
    }
    asked = {"type": "response.output_item.done", "item": ask}
    # The approval can only be answered by continuing this response, which has no id.
    no_id = _sse(asked, _function_call("call_1"), {"type": "response.completed", "response": {}})
    box = Box()
    async with (
        canned(no_id) as (url, seen),
        backend(url, state="local", box=box, gate=Gate("approved")) as made,
    ):
        events = await turn(made, "add please")
    assert len(seen) == 1
    failed = events[-1]
    assert isinstance(failed, TurnFailed), failed
    assert "`calc.add`" in failed.message and len(box.calls) == 1
    assert failed.state is not None
    kinds = [i.get("type") or i.get("role") for i in failed.state.history]
    assert kinds == ["user", "function_call", "function_call_output"]


# -- stream folding details the scripted server does not produce ---------------------------
def test_round_folds_proxy_quirks() -> None:
    result = Round(answered={"mcpr_9"})
    message = {
        "id": "msg_1",
        "type": "message",
        "content": [{"type": "output_text", "text": "whole text"}],
    }
    mcp_call = {
        "id": "mcp_1",
        "type": "mcp_call",
        "name": "delete_page",
        "server_label": "docs",
        "arguments": "not json",
        "output": "deleted",
        "approval_request_id": "mcpr_9",
    }
    events = [
        *result.absorb({"type": "response.created", "response": {"id": "resp_a"}}),
        # A message sent whole, without deltas, is still shown.
        *result.absorb({"type": "response.output_item.done", "item": message}),
        # The call an answered approval led to keeps the approval's call id; a repeat is dropped.
        *result.absorb({"type": "response.output_item.done", "item": mcp_call}),
        *result.absorb({"type": "response.output_item.done", "item": mcp_call}),
    ]
    assert events[0] == TextDelta(text="whole text") and len(events) == 3
    started, finished = events[1], events[2]
    assert isinstance(started, ToolCallStarted) and started.call_id == "mcpr_9"
    assert started.arguments == {"raw": "not json"}
    assert isinstance(finished, ToolCallFinished) and finished.call_id == "mcpr_9"
    incomplete = {
        "id": "resp_a",
        "usage": {"input_tokens": 4, "output_tokens": 9},
        "incomplete_details": {"reason": "max_output_tokens"},
    }
    (notice,) = result.absorb({"type": "response.incomplete", "response": incomplete})
    assert isinstance(notice, Notice) and "length limit" in notice.text
    assert result.completed and result.response_id == "resp_a"
    assert result.usage == Usage(input_tokens=4, output_tokens=9)


async def test_a_local_server_without_any_key_is_answered(
    llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No api_key and no OPENAI_API_KEY (a local proxy): the turn runs, with a placeholder
    the server may ignore, since the openai SDK refuses to build a client without a key."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    llm.script("keyless", Text("no key needed"))
    config = LLMConfig(backend="responses", model="test-model", base_url=llm.base_url)
    made = ResponsesBackend(config, tools=None, servers={})
    try:
        events = await turn(made, "keyless hello")
    finally:
        await made.aclose()
    completed(events)
    assert text_of(events) == "no key needed"
    (sent,) = llm.requests_for("keyless")
    assert sent.headers["Authorization"] == "Bearer not-set"


# -- stored state that would break later turns (issue 9) ----------------------------------
async def test_calls_left_in_the_last_round_are_answered_by_the_next_turn(
    llm: ScriptedLLM,
) -> None:
    add = ToolCall("calc__add", {"a": 1, "b": 2}, "call_more")
    llm.script("rounds", [ToolCall("calc__add", {"a": 1, "b": 1}, "call_1")], [add], Text("ok"))
    async with backend(llm.base_url, max_tool_rounds=1) as made:
        first = completed(await turn(made, "rounds please"))
        # The stored response still waits for call_more: its answer is kept for the next turn.
        assert [i["call_id"] for i in first.state.history] == ["call_more"]
        second = completed(await turn(made, "rounds again", first.state))
    last = llm.requests_for("rounds")[-1].body
    assert last["previous_response_id"] == first.state.previous_response_id
    assert [i.get("type") or i.get("role") for i in last["input"]] == [
        "function_call_output",
        "user",
    ]
    assert second.state.history == ()


async def test_overflow_with_truncation_disabled_starts_fresh_once(llm: ScriptedLLM) -> None:
    llm.script("over", Text("a long answer " * 100), Text("fresh answer"))
    async with backend(llm.base_url, truncation="disabled") as made:
        first = completed(await turn(made, "over " + "x" * 400))
        llm.context_window("over", 200)
        events = await turn(made, "over again", first.state)
    done = completed(events)
    assert text_of(events) == "fresh answer"
    notices = [e for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and "too long" in notices[0].text
    failed, succeeded = llm.requests_for("over")[-2:]
    assert failed.body["truncation"] == "disabled" and failed.body["previous_response_id"]
    assert "previous_response_id" not in succeeded.body
    assert done.state.previous_response_id != first.state.previous_response_id
