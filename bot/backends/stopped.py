"""What a turn a person stopped leaves in the history: the words shown as a cut answer, and an
answer for every call the model made, so no stored call waits for a result (providers refuse that)."""

from __future__ import annotations

from typing import Any

from bot.backends.responses_items import call_item, output_item
from bot.core.stops import STOPPED_BEFORE_RUNNING, STOPPED_WHILE_RUNNING
from bot.core.tool_calls import ToolCall


def stopped_output(call_id: str, started: set[str]) -> str:
    return STOPPED_WHILE_RUNNING if call_id in started else STOPPED_BEFORE_RUNNING


def chat_rounds(rounds: list[dict[str, Any]], started: set[str], cut: str) -> list[dict[str, Any]]:
    """A chat turn's completed rounds, every call answered, then the cut words (if any)."""
    answered = {m.get("tool_call_id") for m in rounds if m.get("role") == "tool"}
    out = list(rounds)
    for message in rounds:
        for call in message.get("tool_calls") or ():
            if call["id"] not in answered:
                answer = stopped_output(call["id"], started)
                out.append({"role": "tool", "tool_call_id": call["id"], "content": answer})
    if cut:
        out.append({"role": "assistant", "content": cut})
    return out


def open_calls(
    calls: list[ToolCall], kept: list[dict[str, Any]], started: set[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The Responses calls of the round a stop cut, not yet answered: their call items (for
    local history) and outputs (which a stored response waits for)."""
    answered = {i.get("call_id") for i in kept if i.get("type") == "function_call_output"}
    items, outputs = [], []
    for call in calls:
        if call.call_id in answered:
            continue
        items.append(call_item(call))
        outputs.append(output_item(call.call_id, stopped_output(call.call_id, started)))
    return items, outputs


def cut_answer(text: str) -> list[dict[str, Any]]:
    return [{"role": "assistant", "content": text}] if text else []


def server_carry(
    result: Any,
    streaming: bool,
    send: list[dict[str, Any]],
    previous: str | None,
    asked: list[str],
    outputs: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], str | None]:
    """With state server: the items the next request must carry, and the response it continues.
    A response cut while streaming is not kept: what its request sent goes again. A response
    whose calls were running is kept, and waits for an answer to each call and approval."""
    if streaming or not result.response_id:
        return list(send), previous
    declined = [
        {"type": "mcp_approval_response", "approval_request_id": a.id, "approve": False}
        for a in result.approvals
        if a.id not in asked
    ]
    return [*send, *outputs, *declined], result.response_id
