"""Script vocabulary for the fake LLM: reply items, faults, and the helpers both APIs share."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
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
    """A function call; a str `arguments` is sent verbatim so tests can send malformed JSON.

    Chat streaming quirks of some providers: `index` forces the stream index (parallel calls that
    all say `index: 0`), and `bare_args` sends the argument deltas without any index.
    """

    name: str
    arguments: str | dict[str, Any]
    call_id: str | None = None
    index: int | None = None
    bare_args: bool = False
    # Chat only: a Gemini thought signature as litellm relays it (the call's
    # `provider_specific_fields`); Gemini refuses the call's result without it.
    thought_signature: str | None = None


@dataclass(frozen=True)
class Reasoning:
    """The model thinking before it answers: chat `delta.reasoning_content` (plus an Anthropic
    style thinking block); Responses a `reasoning` item with summary text deltas."""

    text: str
    chunk_size: int = 20
    delay_s: float = 0.0
    signature: str = "sig-scripted"


@dataclass(frozen=True)
class Refusal:
    """The model declines: chat `delta.refusal` deltas (content stays null); Responses a message
    whose content part is `refusal`, streamed as `response.refusal.delta` events."""

    text: str
    chunk_size: int = 20


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
class Finish:
    """End the response for `reason`: chat `finish_reason` (length, content_filter); Responses
    `response.incomplete` (max_output_tokens, content_filter). Renders nothing itself."""

    reason: str


@dataclass(frozen=True)
class Fault:
    """An HTTP error with OpenAI's error JSON; `retry_after` sets Retry-After / retry-after-ms
    (or, with `retry_date`, Retry-After as an HTTP date alone). `error` replaces fields of the
    error object (e.g. `{"code": "insufficient_quota"}`, or a proxy's `{"code": "400"}`)."""

    status: int
    retry_after: float | None = None
    message: str = "scripted fault"
    error: dict[str, Any] | None = field(default=None, compare=False)
    retry_date: bool = False


@dataclass(frozen=True)
class HangUp:
    """Read the request, then close the connection without a word (a proxy restarting)."""


@dataclass(frozen=True)
class Silent:
    """A 200 stream that carries nothing at all (a silent rate limit at some providers)."""


@dataclass(frozen=True)
class Cut:
    """Stream `text` but drop the connection after `after_chars` characters, unfinished; or,
    with `during`, drop it with that item half sent (an McpCall the server has started: its
    `output_item.added` and `mcp_call.in_progress` arrive, its result never does)."""

    text: str = ""
    after_chars: int = 0
    during: Item | None = None


@dataclass(frozen=True)
class Stall:
    """Send headers (and `text`), go silent for `seconds`, then finish normally. With `during`,
    the silence falls with that item half sent (a server-side MCP tool that runs long)."""

    seconds: float
    text: str = ""
    during: Item | None = None


@dataclass(frozen=True)
class UsageReport:
    """Token counts a response reports instead of the deterministic len//4 ones."""

    input: int
    output: int
    cached: int = 0
    reasoning: int = 0
    # Anthropic-shaped (as litellm and its proxy relay it): input tokens written to the prompt
    # cache, sent as `cache_creation_input_tokens` beside `cache_read_input_tokens`.
    cache_write: int | None = None


Item = Text | ToolCall | McpCall | McpApprovalRequest | Reasoning | Refusal | Finish
Reply = Item | Fault | HangUp | Cut | Stall | Silent | list[Item]
_ITEMS = (Text, ToolCall, McpCall, McpApprovalRequest, Reasoning, Refusal, Finish)

# Overflow errors as providers and gateways word them (the scripted context window sends these).
OVERFLOW_MESSAGE = (
    "This model's maximum context length is {limit} tokens. However, your messages resulted "
    "in {size} tokens. Please reduce the length of the messages."
)


def overflow_error(style: str, limit: int, size: int) -> dict[str, Any]:
    """The error body of a request over the context window: OpenAI's, or a LiteLLM proxy's
    (`code: "400"`, type null, the reason only in the message text)."""
    message = OVERFLOW_MESSAGE.format(limit=limit, size=size)
    if style == "litellm":
        return {
            "error": {
                "message": "litellm.BadRequestError: litellm.ContextWindowExceededError: "
                f"OpenAIException - {message} Received Model Group=test-model",
                "type": None,
                "param": None,
                "code": "400",
            }
        }
    return error_body(400, message, param="messages", code="context_length_exceeded")


def mcp_error(text: str | None) -> dict[str, Any] | None:
    """An `mcp_call.error` as current servers send it: an object, not a string."""
    if text is None:
        return None
    return {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": text}]}


def new_id(prefix: str, sep: str = "_") -> str:
    return f"{prefix}{sep}{secrets.token_hex(12)}"


def args_str(arguments: str | dict[str, Any]) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def normalize(reply: Reply) -> Fault | HangUp | Cut | Stall | Silent | list[Item]:
    """One reply as either a fault or the list of items of one model response."""
    if isinstance(reply, Fault | HangUp | Cut | Stall | Silent):
        return reply
    if isinstance(reply, list):
        for item in reply:
            if not isinstance(item, _ITEMS):
                raise TypeError(f"not a reply item: {item!r}")
        return list(reply)
    if isinstance(reply, _ITEMS):
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
        if isinstance(item, Text | Reasoning | Refusal):
            parts.append(item.text)
        elif isinstance(item, Finish):
            continue
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


def reasoning_tokens(items: list[Item]) -> int:
    """The share of the output tokens spent reasoning (same len//4 rule as token_counts)."""
    return sum(len(item.text) // 4 for item in items if isinstance(item, Reasoning))


def finish_of(items: list[Item]) -> str | None:
    """The scripted finish reason, if the reply ends for a reason other than a normal stop."""
    return next((item.reason for item in items if isinstance(item, Finish)), None)
