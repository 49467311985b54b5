"""Runs one model tool call through policy, approval and the tool itself; shared by all backends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from bot.core.approval_flow import ask_approval, decision_after_restart
from bot.core.approvals import (
    ApprovalGate,
    ApprovalPolicy,
    ApprovalRequest,
    is_read_only,
)
from bot.core.arguments import pretty
from bot.core.elicitation import ElicitationBroker
from bot.core.events import (
    ApprovalRequested,
    ApprovalResolved,
    ToolCallFinished,
    ToolCallStarted,
    TurnEvent,
)
from bot.core.resume import Resumable
from bot.core.state import TurnRequest
from bot.core.tool_updates import Allowance, CallDone, CallUpdates, run_with_updates


class ToolSpecLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def server(self) -> str: ...
    @property
    def tool(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def input_schema(self) -> dict[str, Any]: ...


def rule_name(spec: Any) -> str:
    """What approval rules call a tool: its own name, unless the toolbox says otherwise (the
    bot's resource reader, where the server has a tool of the same name)."""
    return getattr(spec, "rule_name", None) or spec.tool


class ToolResultLike(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def is_error(self) -> bool: ...


class ToolBox(Protocol):
    """The tools the bot itself runs (bot/tools/mcp.py's MCPTools fits)."""

    def tools(self) -> list[Any]: ...
    def find(self, name: str) -> Any: ...
    async def call(
        self, name: str, arguments: dict[str, Any], *, updates: CallUpdates | None = None
    ) -> Any: ...


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    """A call as the model made it; `arguments` is the raw JSON text the model produced."""

    call_id: str
    name: str
    arguments: str


class ToolExecutor:
    def __init__(
        self,
        toolbox: ToolBox,
        policies: dict[str, ApprovalPolicy],
        gate: ApprovalGate,
        elicitations: ElicitationBroker | None = None,
        elicitation_timeout_s: float = 300,
        allowance: Allowance | None = None,
    ) -> None:
        self._toolbox = toolbox
        self._policies = policies
        self._gate = gate
        # Servers' questions to users during a call (MCP elicitation); None: always declined.
        self._elicitations = elicitations
        self._elicitation_timeout = elicitation_timeout_s
        # Checked before each sampling request a server makes during a call.
        self._allowance = allowance

    @property
    def gate(self) -> ApprovalGate:
        return self._gate

    async def keep_position(self, request: TurnRequest) -> None:
        """Store where a turn that asked for an approval stands (after a tool round)."""
        if request.resume.approval_id is not None and request.resume.position is not None:
            await self._gate.keep_position(request.resume.approval_id, request.resume.position)

    def chat_tools(self) -> list[dict[str, Any]]:
        """The tools in Chat Completions' function format."""
        return [
            {
                "type": "function",
                "function": {
                    "name": spec.name,
                    "description": spec.description,
                    "parameters": spec.input_schema,
                },
            }
            for spec in self._toolbox.tools()
        ]

    def responses_tools(self) -> list[dict[str, Any]]:
        """The tools in the Responses API's function format."""
        return [
            {
                "type": "function",
                "name": spec.name,
                "description": spec.description,
                "parameters": spec.input_schema,
            }
            for spec in self._toolbox.tools()
        ]

    async def run(
        self, call: ToolCall, request: TurnRequest, *, resumed: Resumable | None = None
    ) -> AsyncIterator[TurnEvent]:
        """Yield the events of one call; the last one is always its ToolCallFinished.
        `resumed`: the call is the first of a turn resumed after a restart (its approval was
        asked before the restart)."""
        spec = self._toolbox.find(call.name)
        if spec is None:
            yield unknown_tool(call)
            return
        arguments, problem = parse_arguments(call.arguments)
        if problem:
            yield ToolCallFinished(
                call_id=call.call_id,
                server=spec.server,
                tool=spec.tool,
                outcome="failed",
                output=f"{problem} The tool was not run; call it again with a JSON object.",
            )
            return
        policy = self._policies.get(spec.server, ApprovalPolicy())
        read_only = is_read_only(getattr(spec, "annotations", None))
        edited_note = ""
        approval = ApprovalRequest(
            key=request.key,
            call_id=call.call_id,
            server=spec.server,
            tool=spec.tool,
            arguments=arguments,
            requester_id=request.user_id,
            input_schema=spec.input_schema,
            grant_as=getattr(spec, "grant_as", None),
            resume=request.resume.position,
        )
        asking: AsyncIterator[TurnEvent] | None = None
        if resumed is not None:
            asking = decision_after_restart(
                self._gate, approval, resumed, shown_tool=spec.tool, stop=request.stop
            )
            if resumed.status != "pending" and resumed.edited_arguments is not None:
                arguments = resumed.edited_arguments  # approved, edited, before the restart
        elif policy.needs_approval(rule_name(spec), read_only=read_only):
            asking = ask_approval(self._gate, approval, shown_tool=spec.tool, stop=request.stop)
        if asking is not None:
            denied = False
            async for event in asking:
                denied = denied or isinstance(event, ToolCallFinished)
                if isinstance(event, ApprovalRequested) and approval.resume is not None:
                    request.resume.approval_id = event.approval_id  # its row keeps the turn
                if isinstance(event, ApprovalResolved) and event.arguments is not None:
                    arguments = event.arguments
                    edited_note = edited_by_note(event, arguments)
                yield event
            if denied:
                return
        if request.resume.approval_id is not None and request.resume.position is not None:
            # From here the call may run: a restart must never run it again.
            position = {**request.resume.position, "started": True}
            await self._gate.keep_position(request.resume.approval_id, position)
        yield ToolCallStarted(
            call_id=call.call_id, server=spec.server, tool=spec.tool, arguments=arguments
        )
        # Progress, sampling questions and files come as events while the call runs.
        updates = CallUpdates(
            call.call_id,
            request,
            self._gate,
            self._elicitations,
            self._elicitation_timeout,
            self._allowance,
        )
        result: Any = None
        async for item in run_with_updates(self._toolbox, spec.name, arguments, updates):
            if isinstance(item, CallDone):
                result = item.result
            else:
                yield item
        yield ToolCallFinished(
            call_id=call.call_id,
            server=spec.server,
            tool=spec.tool,
            outcome="failed" if result.is_error else "done",
            output=edited_note + result.text,
        )


def edited_by_note(resolved: ApprovalResolved, arguments: dict[str, Any]) -> str:
    """Tells the model its call ran with a person's corrections, so it does not assume its own."""
    who = resolved.decided_by_name or "a user"
    return (
        f"[Note: before approving, {who} (user id {resolved.decided_by}) edited the arguments of "
        f"this call; it ran with these arguments instead of yours: {pretty(arguments)}]\n"
    )


def unknown_tool(call: ToolCall) -> ToolCallFinished:
    """The answer to a call of a tool the bot does not have; the model reads it and adapts."""
    return ToolCallFinished(
        call_id=call.call_id,
        server="",
        tool=call.name,
        outcome="failed",
        output=f"There is no tool named {call.name!r}. It was not run.",
    )


def parse_arguments(raw: str) -> tuple[dict[str, Any], str | None]:
    """The call's arguments as a dict, or a problem the model can read and fix."""
    if not raw.strip():
        return {}, None
    try:
        value = json.loads(raw, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        return {}, f"The arguments were not valid JSON ({exc.msg} at position {exc.pos})."
    except ValueError as exc:
        # Python's json reads NaN/Infinity, which nothing downstream (storage, MCP) accepts.
        return {}, f"The arguments were not valid JSON ({exc})."
    if not isinstance(value, dict):
        return {}, "The arguments must be a JSON object."
    return value, None


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
