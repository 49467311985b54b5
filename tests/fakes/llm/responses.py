"""Renders scripted replies as OpenAI Responses API objects and its typed SSE event stream."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from .items import (
    Finish,
    Item,
    McpApprovalRequest,
    McpCall,
    Reasoning,
    Refusal,
    Text,
    ToolCall,
    arg_pieces,
    args_str,
    finish_of,
    mcp_error,
    new_id,
)
from .stream import Event, Plan, Renderer, counts, sse_event, text_deltas


def last_user_text(body: dict[str, Any]) -> str | None:
    """Text of the last role=user input item; a plain-string input counts as user text.

    A user message of images right after tool outputs is a vision bot passing on what its
    tools returned, not the person's words: it continues the script of the message before.
    """
    inp = body.get("input")
    if isinstance(inp, str):
        return inp
    items = inp if isinstance(inp, list) else []
    for n in range(len(items) - 1, -1, -1):
        item = items[n]
        if not isinstance(item, dict) or item.get("role") != "user":
            continue
        if n and _tool_images(item, items[n - 1]):
            continue
        content = item.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(
                p.get("text", "")
                for p in content
                if isinstance(p, dict) and p.get("type") in ("input_text", "text", "output_text")
            )
        return ""
    return None


def _tool_images(item: dict[str, Any], before: Any) -> bool:
    content = item.get("content")
    follows_output = isinstance(before, dict) and before.get("type") == "function_call_output"
    return (
        follows_output
        and isinstance(content, list)
        and any(isinstance(p, dict) and p.get("type") == "input_image" for p in content)
    )


def image_urls(body: dict[str, Any]) -> list[str]:
    """Every image URL the request's input items carry."""
    inp = body.get("input")
    return [
        str(part.get("image_url") or "")
        for item in (inp if isinstance(inp, list) else [])
        if isinstance(item, dict) and isinstance(item.get("content"), list)
        for part in item["content"]
        if isinstance(part, dict) and part.get("type") == "input_image"
    ]


def final_item(item: Item, item_id: str, call_id: str | None) -> dict[str, Any]:
    """The completed output item, shaped like the SDK's ResponseOutputItem variants."""
    if isinstance(item, Text):
        part = {"type": "output_text", "text": item.text, "annotations": [], "logprobs": []}
        return {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [part],
        }
    if isinstance(item, Refusal):
        return {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "refusal", "refusal": item.text}],
        }
    if isinstance(item, ToolCall):
        return {
            "id": item_id,
            "type": "function_call",
            "call_id": call_id,
            "name": item.name,
            "arguments": args_str(item.arguments),
            "status": "completed",
        }
    if isinstance(item, Reasoning):
        return {
            "id": item_id,
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": item.text}],
            "status": "completed",
        }
    if isinstance(item, McpCall):
        return {
            "id": item_id,
            "type": "mcp_call",
            "server_label": item.server_label,
            "name": item.name,
            "arguments": args_str(item.arguments),
            "output": item.output,
            "error": mcp_error(item.error),
            "status": "failed" if item.error is not None else "completed",
            "approval_request_id": None,
        }
    assert isinstance(item, McpApprovalRequest), item
    return {
        "id": item_id,
        "type": "mcp_approval_request",
        "server_label": item.server_label,
        "name": item.name,
        "arguments": args_str(item.arguments),
    }


_PREFIX = {
    Text: "msg",
    ToolCall: "fc",
    McpCall: "mcp",
    McpApprovalRequest: "mcpr",
    Reasoning: "rs",
    Refusal: "msg",
}


class ResponsesRenderer(Renderer):
    def __init__(self, body: dict[str, Any], plan: Plan, response_id: str) -> None:
        self.body = body
        self.plan = plan
        self.id = response_id
        self.created_at = int(time.time())
        self.seq = 0
        # Ids are fixed up front so streamed events, the stored response and non-streaming agree.
        self.final: list[dict[str, Any]] = []
        self.items: list[Item] = [item for item in plan.items if not isinstance(item, Finish)]
        for item in self.items:
            given = item.id if isinstance(item, McpApprovalRequest) else None
            call_id = (item.call_id or new_id("call")) if isinstance(item, ToolCall) else None
            self.final.append(final_item(item, given or new_id(_PREFIX[type(item)]), call_id))

    # -- whole objects -------------------------------------------------------------
    def usage(self) -> dict[str, Any]:
        inp, out, cached, reasoning = counts(self.plan, self.body.get("input"))
        return {
            "input_tokens": inp,
            "input_tokens_details": {
                "cached_tokens": cached,
                "cache_write_tokens": (self.plan.usage.cache_write or 0) if self.plan.usage else 0,
            },
            "output_tokens": out,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": inp + out,
        }

    def response(self, done: bool) -> dict[str, Any]:
        b = self.body
        reason = finish_of(self.plan.items)
        status = ("incomplete" if reason else "completed") if done else "in_progress"
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "completed_at": int(time.time()) if done else None,
            "error": None,
            "incomplete_details": {"reason": reason} if reason and done else None,
            "instructions": b.get("instructions"),
            "max_output_tokens": b.get("max_output_tokens"),
            "model": b.get("model") or "test-model",
            "output": self.final if done else [],
            "parallel_tool_calls": b.get("parallel_tool_calls", True),
            "previous_response_id": b.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "store": b.get("store", True),
            "temperature": b.get("temperature", 1.0),
            "text": {"format": {"type": "text"}},
            "tool_choice": b.get("tool_choice", "auto"),
            "tools": b.get("tools") or [],
            "top_p": b.get("top_p", 1.0),
            "truncation": b.get("truncation", "disabled"),
            "usage": self.usage() if done else None,
            "user": None,
            "metadata": b.get("metadata") or {},
        }

    # -- events --------------------------------------------------------------------
    def ev(self, type_: str, **fields: Any) -> str:
        payload = {"type": type_, "sequence_number": self.seq, **fields}
        self.seq += 1
        return sse_event(payload)

    def prelude(self) -> Iterator[Event]:
        yield self.ev("response.created", response=self.response(False))
        yield self.ev("response.in_progress", response=self.response(False))

    def events(self, plan: Plan) -> Iterator[Event]:
        # Finish items are no output items: index over the rest so output_index matches.
        return super().events(Plan(self.items, plan.stall, plan.cut, plan.silent, plan.cached))

    def open(self, i: int, item: Item) -> Iterator[Event]:
        final = self.final[i]
        at = {"item_id": final["id"], "output_index": i}
        if isinstance(item, Reasoning):
            added = {**final, "summary": [], "status": "in_progress"}
            yield self.ev("response.output_item.added", output_index=i, item=added)
            summary = {"type": "summary_text", "text": ""}
            yield self.ev(
                "response.reasoning_summary_part.added", **at, summary_index=0, part=summary
            )
            for piece in text_deltas(Text(item.text, item.chunk_size, item.delay_s)):
                if isinstance(piece, str):
                    piece = self.ev(
                        "response.reasoning_summary_text.delta", **at, summary_index=0, delta=piece
                    )
                yield piece
        elif isinstance(item, Text):
            added = {**final, "status": "in_progress", "content": []}
            yield self.ev("response.output_item.added", output_index=i, item=added)
            part: dict[str, Any] = {
                "type": "output_text",
                "text": "",
                "annotations": [],
                "logprobs": [],
            }
            yield self.ev("response.content_part.added", **at, content_index=0, part=part)
            for piece in text_deltas(item):
                if isinstance(piece, str):
                    piece = self.ev(
                        "response.output_text.delta",
                        **at,
                        content_index=0,
                        delta=piece,
                        logprobs=[],
                    )
                yield piece
        elif isinstance(item, Refusal):
            added = {**final, "status": "in_progress", "content": []}
            yield self.ev("response.output_item.added", output_index=i, item=added)
            part = {"type": "refusal", "refusal": ""}
            yield self.ev("response.content_part.added", **at, content_index=0, part=part)
            for piece in text_deltas(Text(item.text, item.chunk_size)):
                if isinstance(piece, str):
                    piece = self.ev("response.refusal.delta", **at, content_index=0, delta=piece)
                yield piece
        elif isinstance(item, ToolCall | McpCall):
            added = {**final, "arguments": "", "status": "in_progress"}
            if isinstance(item, McpCall):
                added.update(output=None, error=None)
            yield self.ev("response.output_item.added", output_index=i, item=added)
            kind = "function_call_arguments" if isinstance(item, ToolCall) else "mcp_call_arguments"
            if isinstance(item, McpCall):
                yield self.ev("response.mcp_call.in_progress", **at)
            for piece in arg_pieces(final["arguments"]):
                yield self.ev(f"response.{kind}.delta", **at, delta=piece)
            extra = {"name": item.name} if isinstance(item, ToolCall) else {}
            yield self.ev(f"response.{kind}.done", **at, arguments=final["arguments"], **extra)
        else:
            yield self.ev("response.output_item.added", output_index=i, item=final)

    def close(self, i: int, item: Item) -> Iterator[Event]:
        final = self.final[i]
        at = {"item_id": final["id"], "output_index": i}
        if isinstance(item, Reasoning):
            part = {"type": "summary_text", "text": item.text}
            yield self.ev(
                "response.reasoning_summary_text.done", **at, summary_index=0, text=item.text
            )
            yield self.ev("response.reasoning_summary_part.done", **at, summary_index=0, part=part)
        elif isinstance(item, Text):
            part = final["content"][0]
            yield self.ev(
                "response.output_text.done", **at, content_index=0, text=item.text, logprobs=[]
            )
            yield self.ev("response.content_part.done", **at, content_index=0, part=part)
        elif isinstance(item, Refusal):
            part = final["content"][0]
            yield self.ev("response.refusal.done", **at, content_index=0, refusal=item.text)
            yield self.ev("response.content_part.done", **at, content_index=0, part=part)
        elif isinstance(item, McpCall):
            yield self.ev(
                f"response.mcp_call.{'failed' if item.error is not None else 'completed'}", **at
            )
        yield self.ev("response.output_item.done", output_index=i, item=final)

    def finale(self) -> Iterator[Event]:
        done = self.response(True)
        kind = "response.incomplete" if done["status"] == "incomplete" else "response.completed"
        yield self.ev(kind, response=done)


def not_found(prev_id: str) -> dict[str, Any]:
    return {
        "error": {
            "message": f"Previous response with id '{prev_id}' not found.",
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }
    }


def dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()
