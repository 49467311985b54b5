"""Refuses conversation histories that OpenAI refuses, with a 400 in OpenAI's words.

A fake that accepts any history lets a bot store one that every real provider rejects (a tool
result for no call, a call never answered, an assistant message with null content), and then
every later turn of that conversation fails in production while the tests stay green.
"""

from __future__ import annotations

from typing import Any


def chat_problem(body: dict[str, Any]) -> str | None:
    """What OpenAI's chat completions would say is wrong with `messages`, or None."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array."
    open_calls: list[str] = []  # call ids of the last assistant turn still waiting for results
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            return f"Invalid value for 'messages[{index}].role': {role!r}."
        if role != "tool" and open_calls:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                f"responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(open_calls)}"
            )
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in open_calls:
                return (
                    f"Invalid parameter: messages with role 'tool' must be a response to a "
                    f"preceding message with 'tool_calls' (messages[{index}], id {call_id!r})."
                )
            open_calls.remove(call_id)
        elif role == "assistant":
            calls = message.get("tool_calls") or []
            content = message.get("content")
            if content is None and not calls:
                return (
                    f"Invalid value for 'messages[{index}].content': expected a string, got null."
                )
            open_calls = [c.get("id") for c in calls]
            if not all(open_calls):
                return f"Missing required parameter: 'messages[{index}].tool_calls[].id'."
    if open_calls:
        return (
            "An assistant message with 'tool_calls' must be followed by tool messages responding "
            f"to each 'tool_call_id'. The following tool_call_ids did not have response "
            f"messages: {', '.join(open_calls)}"
        )
    return None


def responses_problem(body: dict[str, Any], previous_output: list[dict[str, Any]]) -> str | None:
    """What the Responses API would say is wrong with `input` after `previous_output`, or None."""
    items = body.get("input")
    if not isinstance(items, list):
        items = []
    calls = [o["call_id"] for o in previous_output if o.get("type") == "function_call"]
    approvals = {o["id"] for o in previous_output if o.get("type") == "mcp_approval_request"}
    answered: set[str] = set()
    for item in items:
        kind = item.get("type")
        if kind == "function_call":
            calls.append(item.get("call_id"))
        elif kind == "mcp_approval_request":
            approvals.add(item.get("id"))
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if call_id not in calls:
                return f"No tool call found for function call output with call_id {call_id}."
            answered.add(call_id)
        elif kind == "mcp_approval_response":
            request_id = item.get("approval_request_id")
            if request_id not in approvals:
                return f"No approval request found with id {request_id}."
        elif item.get("role") == "assistant" and item.get("content") is None:
            return "Invalid value for 'input[].content': expected a string or array, got null."
    missing = [c for c in calls if c not in answered]
    if missing:
        return f"No tool output found for function call {missing[0]}."
    return None
