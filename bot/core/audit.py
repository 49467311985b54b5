"""The audit trail: one plain line per tool run and per approval decision, built from turn events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.core.arguments import digest
from bot.core.events import (
    ApprovalRequested,
    ApprovalResolved,
    ToolCallFinished,
    ToolCallStarted,
    TurnEvent,
)
from bot.core.state import TurnRequest

# What each decision is called in the audit line (the words: approve, always, edit, ...).
_DECISION_WORDS = {
    "approved": "approve",
    "always": "always",
    "denied": "deny",
    "timeout": "timeout",
    "expired": "expired",
}


@dataclass(frozen=True)
class _Pending:
    server: str
    tool: str
    args: str
    requester_id: int


def decision_line(
    *,
    server: str,
    tool: str,
    requester_id: int,
    decision: str,
    decided_by: int | None,
    args: str,
    where: str = "",
) -> str:
    """`decision`: approve | always | edit | reason | deny | timeout | expired; `where`: the
    place of the click ("in a DM"), so a decision made away from the channel can be found."""
    who = f" by <@{decided_by}>" if decided_by is not None else ""
    who += f" {where}" if where and decided_by is not None else ""
    return f"🔐 `{server}.{tool}` asked by <@{requester_id}>: **{decision}**{who} · args: {args}"


def run_line(*, server: str, tool: str, requester_id: int, outcome: str, args: str) -> str:
    return f"🔧 `{server}.{tool}` ran for <@{requester_id}>: {outcome} · args: {args}"


def decision_word(event: ApprovalResolved) -> str:
    if event.arguments is not None:
        return "edit"
    if event.reason is not None:
        return "reason"
    return _DECISION_WORDS.get(event.status, event.status)


class AuditTrail:
    """Follows the events of running turns and says which deserve an audit line.

    Pure bookkeeping, no I/O: the front end decides where the lines go. Server names, tool names
    and ids are the operator's or Discord's; of the model's arguments only a digest is shown.
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret  # keys the argument digests (Store.install_secret)
        self._asked: dict[int, _Pending] = {}
        self._running: dict[str, _Pending] = {}

    def digest(self, arguments: dict[str, Any]) -> str:
        return digest(arguments, self._secret)

    def observe(self, request: TurnRequest, event: TurnEvent) -> str | None:
        match event:
            case ApprovalRequested():
                self._asked[event.approval_id] = _Pending(
                    event.server, event.tool, self.digest(event.arguments), event.requester_id
                )
            case ApprovalResolved():
                asked = self._asked.pop(event.approval_id, None)
                if asked is None:
                    return None
                args = asked.args
                if event.arguments is not None:
                    args = f"{args} → edited: {self.digest(event.arguments)}"
                return decision_line(
                    server=asked.server,
                    tool=asked.tool,
                    requester_id=asked.requester_id,
                    decision=decision_word(event),
                    decided_by=event.decided_by,
                    args=args,
                    where=event.where,
                )
            case ToolCallStarted():
                self._running[event.call_id] = _Pending(
                    event.server, event.tool, self.digest(event.arguments), request.user_id
                )
            case ToolCallFinished() if event.outcome != "denied":
                started = self._running.pop(event.call_id, None)
                if started is None:
                    return None  # never ran (unknown tool, unreadable arguments)
                return run_line(
                    server=started.server,
                    tool=started.tool,
                    requester_id=started.requester_id,
                    outcome=event.outcome,
                    args=started.args,
                )
        return None
