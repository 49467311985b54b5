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


# The tool the bot adds for servers that have resources (it sends `resources/read`); approval
# rules name it `read_resource`, like a tool of the server's own, unless the server has a tool
# of that name: then that tool has the name, and the reader (which then asks) has none.
READ_RESOURCE = "read_resource"
READER_KEY = "\0resources/read"  # its naming and grant key: never equal to a real tool's name


def reader_spec(name: str, server: str, server_tools: set[str]) -> ToolSpec:
    return ToolSpec(
        name=name,
        server=server,
        tool=READ_RESOURCE,
        rule_name=READER_KEY if READ_RESOURCE in server_tools else None,
        grant_as=READER_KEY,
        description=(
            f"Read a resource of the {server} MCP server by its URI "
            "(for example one from a resource link in a tool result)."
        ),
        input_schema={
            "type": "object",
            "properties": {"uri": {"type": "string", "description": "The URI."}},
            "required": ["uri"],
        },
    )


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
