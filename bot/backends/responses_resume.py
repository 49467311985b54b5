"""Where a `responses` turn stands, as stored for a restart (bot/core/resume.py), and back."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bot.backends.responses_events import ApprovalAsk
from bot.backends.responses_mcp import lost_approval
from bot.core.resume import call_entry, calls_of
from bot.core.tool_calls import ToolCall


@dataclass(frozen=True)
class RoundAt:
    """A round whose own calls and server-side approvals were being answered."""

    history: list[dict[str, Any]]  # state local: the conversation before the turn
    user: dict[str, Any]  # the question as stored
    kept: list[dict[str, Any]]  # this turn's items after the question
    calls: list[ToolCall]  # still to answer, the first one's approval asked before the restart
    asks: list[ApprovalAsk]
    send: list[dict[str, Any]]  # the answers so far, for the next request
    answered: list[str]
    round: int
    response_id: str | None
    previous: str | None
    chained: bool
    approved: list[str]


def position(name: str, model: str, user_name: str, at: RoundAt) -> dict[str, Any]:
    return {
        "backend": name,
        "model": model,
        "user_name": user_name,
        "history": at.history,
        "user": at.user,
        "kept": at.kept,
        "calls": [call_entry(c.call_id, c.name, c.arguments) for c in at.calls],
        "asks": [asdict(ask) for ask in at.asks],
        "send": at.send,
        "answered": sorted(at.answered),
        "round": at.round,
        "response_id": at.response_id,
        "previous": at.previous,
        "chained": at.chained,
        "approved": at.approved,
    }


def restore(where: dict[str, Any]) -> RoundAt:
    send = list(where["send"])
    if where.get("sent"):
        # The request carrying these answers may have reached the server before the restart:
        # sent again, an approval would run its tool twice. Withdrawn instead, saying why.
        send = [lost_approval(item) for item in send]
    return RoundAt(
        history=list(where["history"]),
        user=where["user"],
        kept=list(where["kept"]),
        calls=[ToolCall(call_id=i, name=n, arguments=a) for i, n, a in calls_of(where)],
        asks=[ApprovalAsk(**ask) for ask in where["asks"]],
        send=send,
        answered=list(where["answered"]),
        round=int(where["round"]),
        response_id=where["response_id"],
        previous=where.get("previous"),
        chained=bool(where["chained"]),
        approved=list(where["approved"]),
    )
