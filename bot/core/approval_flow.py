"""Asking a human about one call, unless a grant covers it: shared by tool calls and sampling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import get_args

from bot.core.approvals import ApprovalGate, ApprovalRequest
from bot.core.decisions import Decision, DecisionStatus
from bot.core.events import ApprovalRequested, ApprovalResolved, ToolCallFinished, TurnEvent
from bot.core.resume import LOST_OUTPUT, Resumable
from bot.core.stops import StopSignal


async def ask_approval(
    gate: ApprovalGate,
    approval: ApprovalRequest,
    *,
    shown_tool: str,
    stop: StopSignal | None = None,
) -> AsyncIterator[TurnEvent]:
    """Ask a human unless this conversation already granted the tool ("always").

    Yields nothing when the call may run; otherwise the request and its resolution, and when the
    answer is no, a final ToolCallFinished(denied) whose output tells the model why. When the
    turn is stopped while it waits, the request is withdrawn (its prompt says so, a late click
    finds it closed) and the stop goes on up to the backend.
    """
    if await gate.preapproved(approval.key, approval.grant()):
        return
    approval_id = await gate.open(approval)
    yield ApprovalRequested(
        call_id=approval.call_id,
        approval_id=approval_id,
        server=approval.server,
        tool=shown_tool,
        arguments=approval.arguments,
        requester_id=approval.requester_id,
        editable=approval.input_schema is not None,
    )
    async for event in await_decision(
        gate, approval, approval_id, shown_tool=shown_tool, stop=stop
    ):
        yield event


async def await_decision(
    gate: ApprovalGate,
    approval: ApprovalRequest,
    approval_id: int,
    *,
    shown_tool: str,
    stop: StopSignal | None = None,
) -> AsyncIterator[TurnEvent]:
    """The wait for a prompt already shown (just now, or before a restart) and its outcome."""
    try:
        decision = await gate.wait(approval_id)
    except asyncio.CancelledError:
        if stop is None or not stop.requested:
            raise  # a shutdown: the row stays pending, and the next start-up resumes the turn
        await gate.withdraw(approval_id)
        yield ApprovalResolved(
            call_id=approval.call_id,
            approval_id=approval_id,
            approved=False,
            status="withdrawn",
            decided_by_name=stop.by or "",
        )
        raise
    yield ApprovalResolved(
        call_id=approval.call_id,
        approval_id=approval_id,
        approved=decision.approved,
        status=decision.status,
        decided_by=decision.decided_by,
        decided_by_name=decision.decided_by_name,
        arguments=decision.arguments,
        reason=decision.reason,
        where=decision.where,
    )
    if not decision.approved:
        yield ToolCallFinished(
            call_id=approval.call_id,
            server=approval.server,
            tool=shown_tool,
            outcome="denied",
            output=decision.tool_output(),
        )


async def decision_after_restart(
    gate: ApprovalGate,
    approval: ApprovalRequest,
    resumed: Resumable,
    *,
    shown_tool: str,
    stop: StopSignal | None = None,
) -> AsyncIterator[TurnEvent]:
    """For the first call of a turn resumed after a restart. One that may have started before
    the restart ends "lost" and is never run again; otherwise the wait when its prompt is still
    pending, or what was decided before the restart. Yields nothing when the call may run now."""
    status = resumed.status
    if resumed.started:
        yield ToolCallFinished(
            call_id=approval.call_id,
            server=approval.server,
            tool=shown_tool,
            outcome="lost",
            output=LOST_OUTPUT,
        )
        return
    if status == "pending":
        async for event in await_decision(
            gate, approval, resumed.approval_id, shown_tool=shown_tool, stop=stop
        ):
            yield event
        return
    if status not in ("approved", "always"):
        yield ToolCallFinished(
            call_id=approval.call_id,
            server=approval.server,
            tool=shown_tool,
            outcome="denied",
            output=Decision(status=_known(status)).tool_output(),
        )


def _known(status: str) -> DecisionStatus:
    return status if status in get_args(DecisionStatus) else "expired"  # type: ignore[return-value]
