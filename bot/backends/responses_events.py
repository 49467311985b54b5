"""Folds one Responses API event stream into TurnEvents and what the turn needs to continue."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import openai

from bot.backends.failures import (
    OVERFLOW_WORDS,
    QUOTA,
    QUOTA_WORDS,
    RATE_LIMITED,
    TOO_LONG,
    Failure,
    classify,
)
from bot.backends.responses_mcp import McpLines
from bot.core.events import (
    Notice,
    ReasoningDelta,
    TextDelta,
    TurnEvent,
    Usage,
)
from bot.core.tool_calls import ToolCall

log = logging.getLogger(__name__)


class StreamFailed(Exception):
    """The server reported a failure inside the stream (`response.failed` or `error`)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass(frozen=True)
class ApprovalAsk:
    """A server-side `mcp_approval_request` item: the server waits for our yes or no."""

    id: str
    server: str
    tool: str
    arguments: str


@dataclass
class Round:
    """What one streamed response produced."""

    # Approval request ids answered earlier in this turn, so the mcp_call they led to can reuse
    # the approval's call id and Discord updates one line instead of adding a second.
    answered: set[str] = field(default_factory=set)
    response_id: str | None = None
    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    mcp_names: set[str] = field(default_factory=set)
    approvals: list[ApprovalAsk] = field(default_factory=list)
    completed: bool = False
    failure: Failure | None = None  # set when the response finally failed
    # Server-side MCP calls the server reported starting (item id -> `server.tool`, or "" when
    # unnamed): from then on the request must not be sent again, or the tool runs again.
    mcp_started: dict[str, str] = field(default_factory=dict)
    incomplete: bool = False  # the server stopped it early (length limit, content filter)
    refused: bool = False  # the text is the model's refusal (a `refusal` content part)
    spent: Usage = field(default_factory=Usage)  # earlier attempts that still cost tokens
    _usages: dict[str, Usage] = field(default_factory=dict)
    _done_items: set[str] = field(default_factory=set)
    _streamed_items: set[str] = field(default_factory=set)
    _mcp_lines: McpLines = field(default_factory=McpLines)  # server-side calls as they run

    def reset(self) -> None:
        fresh = Round(answered=self.answered, spent=self.spent + self.usage)
        self.__dict__.update(fresh.__dict__)

    @property
    def cost(self) -> Usage:
        return self.spent + self.usage

    @property
    def empty(self) -> bool:
        """Finished with nothing at all: no words, no calls, no approvals, no MCP call."""
        return not (self.text or self.calls or self.approvals or self.mcp_names or self.incomplete)

    @property
    def usage(self) -> Usage:
        # Keyed by response id: a proxy that chains several responses in one stream reports
        # each once, and a repeated completion event is not counted twice.
        total = Usage()
        for usage in self._usages.values():
            total = total + usage
        return total

    def absorb(self, event: Any) -> list[TurnEvent]:
        """Fold one stream event in; return what to show. Raises StreamFailed on failures."""
        kind = _get(event, "type")
        if kind == "response.created":
            self.response_id = _get(_get(event, "response"), "id") or self.response_id
        elif kind in ("response.output_text.delta", "response.refusal.delta"):
            delta = _get(event, "delta") or ""
            self._streamed_items.add(_get(event, "item_id") or "")
            self.refused = self.refused or (kind == "response.refusal.delta" and bool(delta))
            if delta:
                self.text += delta
                return [TextDelta(text=delta)]
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return [ReasoningDelta(text=_get(event, "delta") or "")]
        elif kind == "response.output_item.added":
            item = _get(event, "item")
            if _get(item, "type") == "reasoning":
                return [ReasoningDelta(text="")]  # reasoning has begun, maybe without a summary
            if _get(item, "type") in MCP_ITEMS:
                self._mcp_started(_get(item, "id"), item)
            if _get(item, "type") == "mcp_call":
                item_id = _get(item, "id") or ""
                return self._mcp_lines.running(item_id, self._mcp_call_id(item, item_id), item)
        elif kind == "response.mcp_call_arguments.done":
            return self._mcp_lines.arguments(_get(event, "item_id") or "", _get(event, "arguments"))
        elif isinstance(kind, str) and kind.startswith("response.mcp_call."):
            self._mcp_started(_get(event, "item_id"), None)  # in_progress, completed, failed
            if kind in ("response.mcp_call.completed", "response.mcp_call.failed"):
                return self._mcp_lines.ended(_get(event, "item_id") or "", kind.endswith("failed"))
        elif kind == "response.output_item.done":
            return self._item_done(_get(event, "item"))
        elif kind in ("response.completed", "response.incomplete"):
            return self._finish(_get(event, "response"), incomplete=kind == "response.incomplete")
        elif kind == "response.failed":
            error = _get(_get(event, "response"), "error")
            log.warning(
                "model response failed: %s: %s", _get(error, "code"), _get(error, "message")
            )
            raise StreamFailed(stream_failure(_get(error, "code"), _get(error, "message")))
        elif kind == "error":
            log.warning("model stream error: %s: %s", _get(event, "code"), _get(event, "message"))
            raise StreamFailed(stream_failure(_get(event, "code"), _get(event, "message")))
        return []

    def _mcp_started(self, item_id: Any, item: Any) -> None:
        name, server = _get(item, "name"), _get(item, "server_label")
        label = f"`{server}.{name}`" if server and name else f"`{name}`" if name else ""
        key = str(item_id or "")
        if label or key not in self.mcp_started:
            self.mcp_started[key] = label

    @property
    def started_labels(self) -> list[str]:
        return [label for label in dict.fromkeys(self.mcp_started.values()) if label]

    def _finish(self, response: Any, *, incomplete: bool) -> list[TurnEvent]:
        self.completed = True
        self.incomplete = self.incomplete or incomplete
        response_id = _get(response, "id") or self.response_id or ""
        self.response_id = response_id or None
        usage = _get(response, "usage")
        if usage is not None:
            details = _get(usage, "input_tokens_details")
            self._usages[response_id] = Usage(
                input_tokens=_get(usage, "input_tokens") or 0,
                output_tokens=_get(usage, "output_tokens") or 0,
                cached_input_tokens=_get(details, "cached_tokens") or 0,
                # A LiteLLM proxy's Anthropic cache writes.
                cache_write_tokens=_get(details, "cache_write_tokens") or 0,
                reasoning_tokens=_get(_get(usage, "output_tokens_details"), "reasoning_tokens")
                or 0,
            )
        if not incomplete:
            return []
        reason = _get(_get(response, "incomplete_details"), "reason")
        return [Notice(text=_INCOMPLETE.get(reason, _INCOMPLETE[None]))]

    def _item_done(self, item: Any) -> list[TurnEvent]:
        kind = _get(item, "type")
        item_id = _get(item, "id") or ""
        # Some proxies repeat an item's done event; acting twice would run a tool twice.
        if item_id and item_id in self._done_items:
            return []
        if item_id:
            self._done_items.add(item_id)
        if kind in MCP_ITEMS:
            self._mcp_started(item_id, item)  # a proxy may send done events only
        if kind == "message" and item_id not in self._streamed_items:
            # A server that sends whole messages without deltas still gets its text shown.
            parts = _get(item, "content") or []
            self.refused = self.refused or any(_get(p, "type") == "refusal" for p in parts)
            text = "".join(_get(part, "text") or _get(part, "refusal") or "" for part in parts)
            self.text += text
            return [TextDelta(text=text)] if text else []
        if kind == "function_call":
            call_id = _get(item, "call_id") or item_id or f"call_{uuid.uuid4().hex[:24]}"
            if any(call.call_id == call_id for call in self.calls):
                return []
            name = _get(item, "name") or ""
            self.calls.append(
                ToolCall(call_id=call_id, name=name, arguments=_get(item, "arguments") or "")
            )
        elif kind == "mcp_call":
            return self._mcp_call(item, item_id)
        elif kind == "mcp_approval_request":
            self.approvals.append(
                ApprovalAsk(
                    id=item_id,
                    server=_get(item, "server_label") or "",
                    tool=_get(item, "name") or "",
                    arguments=_get(item, "arguments") or "",
                )
            )
        return []

    def _mcp_call(self, item: Any, item_id: str) -> list[TurnEvent]:
        name = _get(item, "name") or ""
        self.mcp_names.add(name)
        error = mcp_error_text(_get(item, "error"))
        failed = bool(error) or _get(item, "status") == "failed"
        return self._mcp_lines.finished(
            item_id,
            self._mcp_call_id(item, item_id),
            item,
            "failed" if failed else "done",
            _get(item, "output") or error or "",
        )

    def _mcp_call_id(self, item: Any, item_id: str) -> str:
        approval_id = _get(item, "approval_request_id")
        return approval_id if approval_id in self.answered else item_id

    def calls_to_run(self, own_tools: set[str]) -> list[ToolCall]:
        """The function calls the bot must answer.

        A proxy that runs MCP tools itself (LiteLLM) also streams the model's raw function_call
        for them; the mcp_call of the same name says it already ran, so running it here would
        run it twice. Unknown names without an mcp_call still go to the executor, which answers
        them as failed so the model learns the tool does not exist.
        """
        return [
            call for call in self.calls if call.name in own_tools or call.name not in self.mcp_names
        ]


# Output items that mean the server has begun on a server-side MCP call.
MCP_ITEMS = ("mcp_call", "mcp_approval_request")

_INCOMPLETE: dict[str | None, str] = {
    "max_output_tokens": "The answer reached the model's length limit and was cut short.",
    "content_filter": "The model service's content filter cut the answer short.",
    None: "The model stopped before finishing the answer.",
}


def stream_failure(code: str | None, message: str | None = None) -> Failure:
    """Plain words for a failure the server reported inside the stream (its text is logged)."""
    words = f"{code or ''} {message or ''}"
    if code == "context_length_exceeded" or OVERFLOW_WORDS.search(words):
        return Failure(TOO_LONG, False, overflow=True)
    if code == "insufficient_quota" or QUOTA_WORDS.search(words):
        return Failure(QUOTA, False)
    if code == "rate_limit_exceeded":
        return Failure(RATE_LIMITED, True)
    if code and "image" in code:
        return Failure(
            "The model service could not use an attached image. "
            "Try again with another image or none.",
            False,
        )
    if code == "invalid_prompt":
        return Failure("The model service refused this request. Try rephrasing it.", False)
    return Failure("The model service could not finish this answer. Try again.", True)


def failure_of(exc: BaseException) -> Failure:
    """Like failures.classify, plus the failures a Responses stream reports inside itself."""
    if isinstance(exc, StreamFailed):
        return exc.failure
    # The SDK raises a bare APIError for an error payload in the stream; it carries the code.
    if type(exc) is openai.APIError:
        return stream_failure(getattr(exc, "code", None), getattr(exc, "message", None))
    # classify also covers the HTTP library's errors that escape the SDK mid-stream.
    return classify(exc)


def missing_previous(exc: BaseException, previous_id: str) -> bool:
    """Did the server reject the stored previous_response_id (unknown, expired, deleted)?"""
    if not isinstance(exc, openai.BadRequestError | openai.NotFoundError):
        return False
    if getattr(exc, "code", None) == "previous_response_not_found":
        return True
    if getattr(exc, "param", None) == "previous_response_id":
        return True
    message = str(getattr(exc, "message", "") or "").lower()
    if "previous_response" in message or "previous response" in message:
        return True
    return "not found" in message and previous_id.lower() in message


def mcp_error_text(error: Any) -> str:
    """The words of an `mcp_call.error`.

    Older servers send a string; current ones an object: a protocol or HTTP error with a
    `message`, or a tool-execution error whose `content` holds the tool's own text parts.
    """
    if error is None or isinstance(error, str):
        return error or ""
    message = _get(error, "message")
    if message:
        return str(message)
    content = _get(error, "content")
    if isinstance(content, list):
        texts = [str(_get(part, "text")) for part in content if _get(part, "text")]
        if texts:
            return "\n".join(texts)
    if isinstance(content, str) and content:
        return content
    kind = _get(error, "type") or "error"
    code = _get(error, "code")
    return f"{kind} {code}" if code is not None else str(kind)


def _get(obj: Any, name: str) -> Any:
    # Streamed events are plain dicts (sse.py); an SDK model passed in is read by attribute.
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def asking_server(label: str, server_side: set[str]) -> str:
    """The configured server a server-side approval request is judged by. The label is the model
    server's word: one we never sent as a `server_label` (a proxy's own name, or the name of a
    server the bot runs, which has its own rule) must borrow no rule and no grant, so it becomes
    a name the approval broker does not know, and that gets the strictest rule."""
    return label if label in server_side else f"{label} (unknown label)"
