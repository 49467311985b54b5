"""The values MCPTools hands out: tool specs, call results, server status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bot.tools.mcp_content import Attachment, SplitResult


@dataclass(frozen=True)
class ToolSpec:
    name: str
    server: str
    tool: str
    description: str
    input_schema: dict[str, Any]
    annotations: Any = None  # the server's ToolAnnotations (read_only_hint, ...), if any
    # For a tool the bot adds (the resource reader): what approval rules call it, when not
    # `tool`, and what "always allow" is granted as, so neither is shared with a server's tool.
    rule_name: str | None = None
    grant_as: str | None = None


@dataclass(frozen=True)
class ToolResult:
    text: str  # what the model reads
    is_error: bool
    attachments: tuple[Attachment, ...] = ()  # files for the user's reply
    user_notes: tuple[str, ...] = ()  # content the server meant for the user only
    images: tuple[tuple[str, str], ...] = ()  # (mime type, base64), for a vision model

    @classmethod
    def of(cls, split: SplitResult, is_error: bool) -> ToolResult:
        return cls(split.text, is_error, split.attachments, split.user_notes, split.images)


@dataclass(frozen=True)
class ServerStatus:
    name: str
    transport: Literal["stdio", "http"]
    connected: bool
    error: str | None
    tools: list[str]
    prompts: list[str] = field(default_factory=list)
    sampling: str = "deny"  # whether the bot answers this server's sampling requests
    elicitation: bool = False  # whether the bot forwards this server's questions to users
