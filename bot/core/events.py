"""The one event stream every backend emits and every front end (Discord, CLI) renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bot.core.state import ConversationState


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Tokens one or more model calls cost. Cached input is part of `input_tokens` and
    reasoning part of `output_tokens`, as the providers count them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0  # the part of input_tokens the provider served from its cache
    reasoning_tokens: int = 0  # the part of output_tokens spent reasoning
    # The part of input_tokens written to the provider's prompt cache (Anthropic bills it above
    # the input price; `cache_creation_input_tokens`).
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )

    def __bool__(self) -> bool:
        return bool(self.input_tokens or self.output_tokens)


@dataclass(frozen=True, kw_only=True)
class TextDelta:
    kind: Literal["text_delta"] = "text_delta"
    text: str


@dataclass(frozen=True, kw_only=True)
class ReasoningDelta:
    """The model is reasoning before it answers; `text` is its summary or reasoning text, or ""
    when the provider only says that it reasons. Never part of the answer."""

    kind: Literal["reasoning_delta"] = "reasoning_delta"
    text: str = ""


@dataclass(frozen=True, kw_only=True)
class Notice:
    """A one-line remark about the turn itself (e.g. a conversation had to start fresh)."""

    kind: Literal["notice"] = "notice"
    text: str
    icon: str = "ℹ️"  # e.g. 🎙️ for what was heard in a voice message


@dataclass(frozen=True, kw_only=True)
class ToolCallStarted:
    kind: Literal["tool_call_started"] = "tool_call_started"
    call_id: str
    server: str
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ApprovalRequested:
    kind: Literal["approval_requested"] = "approval_requested"
    call_id: str
    approval_id: int
    server: str
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    requester_id: int
    editable: bool = False  # whether a person may edit the arguments before approving


@dataclass(frozen=True, kw_only=True)
class ApprovalResolved:
    kind: Literal["approval_resolved"] = "approval_resolved"
    call_id: str
    approval_id: int
    approved: bool
    status: str  # approved | denied | timeout | always
    decided_by: int | None = None
    decided_by_name: str = ""
    arguments: dict[str, Any] | None = None  # the arguments as edited by `decided_by`
    reason: str | None = None  # why `decided_by` denied, in their words
    where: str = ""  # where `decided_by` decided ("in the channel", "in a DM"), for the audit


@dataclass(frozen=True, kw_only=True)
class ToolCallFinished:
    kind: Literal["tool_call_finished"] = "tool_call_finished"
    call_id: str
    server: str
    tool: str
    # "lost": approved before a restart, and the restart came while it may have been running;
    # it is never run again, and the model is told so (bot/core/resume.py).
    outcome: Literal["done", "failed", "denied", "lost"]
    output: str  # what the model receives as the tool result


@dataclass(frozen=True, kw_only=True)
class TurnCompleted:
    kind: Literal["turn_completed"] = "turn_completed"
    state: ConversationState
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    # Set when a person stopped the turn (/stop, the Stop button): who. `state` then holds the
    # words shown as the answer, cut where it stopped.
    stopped_by: str | None = None
    # What the turn cost as a whole (its MCP sampling included), set once it is saved: dollars
    # when the model's price is known, and the seconds since it held its conversation.
    cost_usd: float | None = None
    seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class TurnFailed:
    kind: Literal["turn_failed"] = "turn_failed"
    message: str  # plain words for the user: what happened, whether to retry
    retryable: bool = True
    # What to store despite the failure: the rounds that completed (tools that already ran), or a
    # repaired history. None: keep the stored state as it was.
    state: ConversationState | None = None
    usage: Usage = field(default_factory=Usage)  # tokens the failed turn still cost
    model: str = ""
    # The model service failed (rate limit, overload, 5xx, timeout, lost connection), not the
    # request: another model may answer it (llm.fallback_models).
    transient: bool = False


# ---- What MCP tools show the user besides text (issue 13) ---------------------------------


@dataclass(frozen=True, kw_only=True)
class Attachment:
    """A file for the reply: an image, audio or binary resource a tool returned."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class ToolProgress:
    """A running tool's `notifications/progress`: progress/total, or just a message."""

    kind: Literal["tool_progress"] = "tool_progress"
    call_id: str
    progress: float
    total: float | None = None
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class ToolUserContent:
    """Parts of a tool result meant for the user, not the model (files, user-only notes)."""

    kind: Literal["tool_user_content"] = "tool_user_content"
    call_id: str
    attachments: tuple[Attachment, ...] = ()
    notes: tuple[str, ...] = ()
    notes_file: str | None = None  # the notes were cut; all of them are in this attachment


@dataclass(frozen=True, kw_only=True)
class ToolImages:
    """Images a tool returned for the model: sent to it when `llm.vision` is on."""

    kind: Literal["tool_images"] = "tool_images"
    call_id: str
    images: tuple[Attachment, ...]


@dataclass(frozen=True, kw_only=True)
class SamplingUsed:
    """The bot's model answered an MCP server's sampling request: count it with the turn."""

    kind: Literal["sampling_used"] = "sampling_used"
    model: str
    usage: Usage


@dataclass(frozen=True, kw_only=True)
class ElicitationRequested:
    """A server asks the requester something during a call (MCP elicitation)."""

    kind: Literal["elicitation_requested"] = "elicitation_requested"
    call_id: str
    elicitation_id: str
    server: str
    message: str
    requester_id: int
    pages: int = 1  # modals needed for the form (0 for a URL or a form with no fields)
    url: str | None = None  # URL mode: the user opens this, then confirms


@dataclass(frozen=True, kw_only=True)
class ElicitationResolved:
    kind: Literal["elicitation_resolved"] = "elicitation_resolved"
    call_id: str
    elicitation_id: str
    action: Literal["accept", "decline", "cancel"]


# ---------------------------------------------------------------------------------------------

TurnEvent = (
    TextDelta
    | ReasoningDelta
    | Notice
    | ToolCallStarted
    | ApprovalRequested
    | ApprovalResolved
    | ToolCallFinished
    | TurnCompleted
    | TurnFailed
    | ToolProgress
    | ToolUserContent
    | ToolImages
    | SamplingUsed
    | ElicitationRequested
    | ElicitationResolved
)
