"""Server-side MCP calls waiting for a person's yes or no (`mcp_approval_request` items)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from bot.backends.responses_events import ApprovalAsk, asking_server
from bot.backends.responses_mcp import json_object
from bot.core.approval_flow import ask_approval, decision_after_restart
from bot.core.approvals import ApprovalRequest
from bot.core.events import ApprovalRequested, ApprovalResolved, ToolCallFinished, TurnEvent
from bot.core.resume import Resumable
from bot.core.state import TurnRequest
from bot.core.tool_calls import ToolExecutor


@dataclass
class Verdict:
    """An approval's outcome, handed out of the async generator that asked for it."""

    approved: bool = False
    reason: str | None = None  # a person's words when they denied with a reason


async def ask_server_call(
    tools: ToolExecutor | None,
    server_side: set[str],
    ask: ApprovalAsk,
    request: TurnRequest,
    verdict: Verdict,
    resumed: Resumable | None,
) -> AsyncIterator[TurnEvent]:
    """Ask a human about a server-side MCP call; the answer lands in `verdict`.
    `resumed`: it was asked before a restart (the turn resumes from it)."""
    if tools is None:
        # Nobody to ask, so the call is not run.
        yield ToolCallFinished(
            call_id=ask.id,
            server=ask.server,
            tool=ask.tool,
            outcome="denied",
            output="This tool call was not approved, so it was not run.",
        )
        return
    approval = ApprovalRequest(
        key=request.key,
        call_id=ask.id,
        server=asking_server(ask.server, server_side),
        tool=ask.tool,
        arguments=json_object(ask.arguments),
        requester_id=request.user_id,
        resume=request.resume.position,
    )
    verdict.approved = True
    gate = tools.gate
    asking = (
        decision_after_restart(gate, approval, resumed, shown_tool=ask.tool, stop=request.stop)
        if resumed is not None
        else ask_approval(gate, approval, shown_tool=ask.tool, stop=request.stop)
    )
    async for event in asking:
        if isinstance(event, ApprovalRequested):
            request.resume.approval_id = event.approval_id  # its row keeps the turn
        if isinstance(event, ToolCallFinished):
            verdict.approved = False
        if isinstance(event, ApprovalResolved):
            verdict.reason = event.reason
        yield event
