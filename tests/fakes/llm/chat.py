"""Renders scripted replies as OpenAI chat completions (chunked SSE or one JSON object)."""

from __future__ import annotations

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
    new_id,
)
from .stream import Event, Plan, Renderer, counts, sse_data, text_deltas


def last_user_text(body: dict[str, Any]) -> str | None:
    """Content of the last role=user message: a string, or its text parts joined."""
    for msg in reversed(body.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(
                    p.get("text", "")
                    for p in content
                    if isinstance(p, dict) and p.get("type") == "text"
                )
            return ""
    return None


def image_urls(body: dict[str, Any]) -> list[str]:
    """Every image URL the request's messages carry."""
    return [
        str((part.get("image_url") or {}).get("url", ""))
        for msg in body.get("messages") or []
        if isinstance(msg, dict) and isinstance(msg.get("content"), list)
        for part in msg["content"]
        if isinstance(part, dict) and part.get("type") == "image_url"
    ]


def check_items(items: list[Item]) -> None:
    """MCP items exist only in the Responses API; scripting them for chat is a test bug."""
    for item in items:
        if isinstance(item, McpCall | McpApprovalRequest):
            raise ValueError(f"{type(item).__name__} is only valid for /v1/responses")


class ChatRenderer(Renderer):
    def __init__(self, body: dict[str, Any], plan: Plan) -> None:
        self.body = body
        self.plan = plan
        self.id = new_id("chatcmpl", "-")
        self.created = int(time.time())
        self.model = body.get("model") or "test-model"
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        # Call ids are fixed up front so streamed and final views agree.
        self.call_ids = {
            i: item.call_id or new_id("call")
            for i, item in enumerate(plan.items)
            if isinstance(item, ToolCall)
        }
        # A ToolCall may force its index (a provider repeating `index: 0` for parallel calls).
        self.tool_index = {
            i: n if plan.items[i].index is None else plan.items[i].index  # type: ignore[union-attr]
            for n, i in enumerate(self.call_ids)
        }

    # -- shared pieces -------------------------------------------------------------
    def usage(self) -> dict[str, Any]:
        inp, out, cached, reasoning = counts(self.plan, self.body.get("messages"))
        written = self.plan.usage.cache_write if self.plan.usage else None
        if written is not None:
            # Anthropic's counts as litellm relays them: reads and writes beside the total.
            return {
                "prompt_tokens": inp,
                "completion_tokens": out,
                "total_tokens": inp + out,
                "prompt_tokens_details": {"cached_tokens": cached},
                "completion_tokens_details": {"reasoning_tokens": reasoning},
                "cache_creation_input_tokens": written,
                "cache_read_input_tokens": cached,
            }
        return {
            "prompt_tokens": inp,
            "completion_tokens": out,
            "total_tokens": inp + out,
            "prompt_tokens_details": {
                "cached_tokens": cached,
                "audio_tokens": 0,
            },
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
            },
        }

    def finish_reason(self) -> str:
        return finish_of(self.plan.items) or ("tool_calls" if self.call_ids else "stop")

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> str:
        obj: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_scripted",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            # OpenAI sends usage: null on every chunk but the last when include_usage is set.
            obj["usage"] = None
        return sse_data(obj)

    # -- streaming -----------------------------------------------------------------
    def prelude(self) -> Iterator[Event]:
        yield self.chunk({"role": "assistant", "content": "", "refusal": None})

    def open(self, i: int, item: Item) -> Iterator[Event]:
        if isinstance(item, Finish):
            return
        if isinstance(item, Text):
            for piece in text_deltas(item):
                yield piece if not isinstance(piece, str) else self.chunk({"content": piece})
            return
        if isinstance(item, Refusal):
            # As OpenAI streams a refusal: content stays null, the words come as `refusal`.
            for piece in text_deltas(Text(item.text, item.chunk_size)):
                yield piece if not isinstance(piece, str) else self.chunk({"refusal": piece})
            return
        if isinstance(item, Reasoning):
            # reasoning_content as DeepSeek/vLLM/litellm send it, plus the thinking block
            # litellm relays from Anthropic (text in pieces, the signature last).
            for piece in text_deltas(Text(item.text, item.chunk_size, item.delay_s)):
                if isinstance(piece, str):
                    block = {"type": "thinking", "thinking": piece}
                    piece = self.chunk({"reasoning_content": piece, "thinking_blocks": [block]})
                yield piece
            block = {"type": "thinking", "thinking": "", "signature": item.signature}
            yield self.chunk({"thinking_blocks": [block]})
            return
        assert isinstance(item, ToolCall)
        index, call_id = self.tool_index[i], self.call_ids[i]
        pieces = arg_pieces(args_str(item.arguments))
        # Like OpenAI: id, type and name come once, with empty arguments; then argument deltas.
        head: dict[str, Any] = {"index": index, "id": call_id, "type": "function"}
        if item.thought_signature is not None:
            head["provider_specific_fields"] = {"thought_signature": item.thought_signature}
        yield self.chunk(
            {"tool_calls": [{**head, "function": {"name": item.name, "arguments": ""}}]}
        )
        for piece in pieces:
            if piece:
                fragment: dict[str, Any] = {"function": {"arguments": piece}}
                if not item.bare_args:
                    fragment["index"] = index
                yield self.chunk({"tool_calls": [fragment]})

    def silence(self) -> Iterator[Event]:
        yield sse_data("[DONE]")

    def finale(self) -> Iterator[Event]:
        yield self.chunk({}, self.finish_reason())
        if self.include_usage:
            yield sse_data(
                {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "system_fingerprint": "fp_scripted",
                    "choices": [],
                    "usage": self.usage(),
                }
            )
        yield sse_data("[DONE]")

    # -- non-streaming -------------------------------------------------------------
    def completion(self) -> dict[str, Any]:
        text = "".join(i.text for i in self.plan.items if isinstance(i, Text))
        thinking = "".join(i.text for i in self.plan.items if isinstance(i, Reasoning))
        refusal = "".join(i.text for i in self.plan.items if isinstance(i, Refusal))
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text if (text or not (self.call_ids or refusal)) else None,
            "refusal": refusal or None,
        }
        if thinking:
            message["reasoning_content"] = thinking
        if self.call_ids:
            message["tool_calls"] = [
                {
                    "id": self.call_ids[i],
                    "type": "function",
                    "function": {"name": item.name, "arguments": args_str(item.arguments)},
                }
                for i, item in enumerate(self.plan.items)
                if isinstance(item, ToolCall)
            ]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_scripted",
            # As OpenAI and Groq answer; litellm's groq path reads it.
            "service_tier": "default",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self.finish_reason(),
                }
            ],
            "usage": self.usage(),
        }
