"""Script vocabulary for the fake LLM: reply items, faults, and the helpers both APIs share."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Text:
    """Assistant text, streamed in `chunk_size`-character deltas with `delay_s` between them."""

    text: str
    chunk_size: int = 20
    delay_s: float = 0.0
    first_delay_s: float = 0.0  # a model slow to start: silence before the first delta


@dataclass(frozen=True)
class ToolCall:
    """A function call; a str `arguments` is sent verbatim so tests can send malformed JSON."""

    name: str
    arguments: str | dict[str, Any]
    call_id: str | None = None


@dataclass(frozen=True)
class McpCall:
    """A server-side MCP call as a Responses server (e.g. the LiteLLM proxy) reports it."""

    name: str
    arguments: str | dict[str, Any]
    output: str | None = None
    error: str | None = None  # sent as the SDK's tool-execution error object holding this text
    server_label: str = "litellm"


@dataclass(frozen=True)
class McpApprovalRequest:
    """A Responses `mcp_approval_request` item (the server asks before running an MCP tool)."""

    name: str
    arguments: str | dict[str, Any]
    server_label: str = "docs"
    id: str | None = None


@dataclass(frozen=True)
class Fault:
    """An HTTP error with OpenAI's error JSON; 429 also sets Retry-After / retry-after-ms."""

    status: int
    retry_after: float | None = None
    message: str = "scripted fault"


@dataclass(frozen=True)
class Cut:
    """Stream `text` but drop the connection after `after_chars` characters, unfinished."""

    text: str
    after_chars: int


@dataclass(frozen=True)
class Stall:
    """Send headers (and `text`), go silent for `seconds`, then finish normally."""

    seconds: float
    text: str = ""


Item = Text | ToolCall | McpCall | McpApprovalRequest
Reply = Item | Fault | Cut | Stall | list[Item]


def mcp_error(text: str | None) -> dict[str, Any] | None:
    """An `mcp_call.error` as current servers send it: an object, not a string."""
    if text is None:
        return None
    return {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": text}]}


def new_id(prefix: str, sep: str = "_") -> str:
    return f"{prefix}{sep}{secrets.token_hex(12)}"


def args_str(arguments: str | dict[str, Any]) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def normalize(reply: Reply) -> Fault | Cut | Stall | list[Item]:
    """One reply as either a fault or the list of items of one model response."""
    if isinstance(reply, Fault | Cut | Stall):
        return reply
    if isinstance(reply, list):
        for item in reply:
            if not isinstance(item, Text | ToolCall | McpCall | McpApprovalRequest):
                raise TypeError(f"not a reply item: {item!r}")
        return list(reply)
    if isinstance(reply, Text | ToolCall | McpCall | McpApprovalRequest):
        return [reply]
    raise TypeError(f"not a reply: {reply!r}")


def split(text: str, size: int) -> list[str]:
    """Chunks of `size` chars; an empty string stays one empty chunk so it is still sent."""
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def arg_pieces(arguments: str) -> list[str]:
    """Arguments in ≥2 pieces once they reach 8 chars, so clients must really reassemble them."""
    if len(arguments) < 8:
        return [arguments]
    return split(arguments, min(16, -(-len(arguments) // 3)))


def output_text(items: list[Item]) -> str:
    """Everything the model "wrote", the base of the deterministic output token count."""
    parts: list[str] = []
    for item in items:
        if isinstance(item, Text):
            parts.append(item.text)
        else:
            parts.append(item.name + args_str(item.arguments))
    return "".join(parts)


def token_counts(request_input: Any, out_text: str) -> tuple[int, int]:
    """Deterministic usage: len(json(input))//4 in, len(text)//4 out (min 1 each)."""
    inp = max(1, len(json.dumps(request_input)) // 4)
    return inp, max(1, len(out_text) // 4)


def error_body(status: int, message: str, **overrides: Any) -> dict[str, Any]:
    """OpenAI's error envelope, with the type/code OpenAI uses for that status."""
    if status == 429:
        kind, code = "requests", "rate_limit_exceeded"
    elif status >= 500:
        kind, code = "server_error", None
    elif status == 401:
        kind, code = "invalid_request_error", "invalid_api_key"
    else:
        kind, code = "invalid_request_error", None
    err: dict[str, Any] = {"message": message, "type": kind, "param": None, "code": code}
    err.update(overrides)
    return {"error": err}
