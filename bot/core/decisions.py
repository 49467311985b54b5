"""Approvals as values: what a turn asks a person, what they decided, what a grant is kept under."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.core.state import ConversationKey

DecisionStatus = Literal["approved", "always", "denied", "timeout", "expired", "withdrawn"]

# What a server's sampling (its requests to use the bot's model) is granted as: a NUL cannot be
# in a tool name the bot calls, so no tool of the server shares the grant.
SAMPLING_GRANT = "\0sampling"


def grant_name(server: str, tool: str) -> str:
    """What an "always allow" grant is stored under: server and tool, so a same-named tool of
    another server is never pre-approved by it. JSON keeps any server or tool name unambiguous."""
    return json.dumps([server, tool], ensure_ascii=False)


@dataclass(frozen=True, kw_only=True)
class Decision:
    status: DecisionStatus
    decided_by: int | None = None
    decided_by_name: str = ""
    arguments: dict[str, Any] | None = None  # set when the decider edited the arguments
    reason: str | None = None  # set when the decider denied with a reason
    where: str = ""  # where the decision was made, in words ("in the channel", "in a DM")

    @property
    def approved(self) -> bool:
        return self.status in ("approved", "always")

    def tool_output(self) -> str:
        """What the model reads when the call did not run."""
        if self.reason is not None:
            who = self.decided_by_name or "The user"
            return (
                f"{who} declined to run this tool call, and said why: {self.reason}\n"
                "It was not run."
            )
        if self.status == "denied":
            return "The user declined to run this tool call. It was not run."
        if self.status == "timeout":
            return "Nobody approved this tool call in time, so it was not run."
        return "This tool call was not approved, so it was not run."


@dataclass(frozen=True, kw_only=True)
class ApprovalRequest:
    key: ConversationKey
    call_id: str
    server: str
    tool: str  # the server's own tool name; grants key on (server, tool)
    arguments: dict[str, Any] = field(default_factory=dict)
    requester_id: int
    # The tool's JSON Schema, for checking edited arguments; None: the call cannot be edited
    # (a server-side call, whose arguments only the model server could change).
    input_schema: dict[str, Any] | None = None
    # What "always allow" is granted as when it is not a tool of the server: the bot's own
    # resource reader, or the server's sampling (SAMPLING_GRANT). None: `tool`.
    grant_as: str | None = None
    # Where the turn stands (bot/core/resume.py), stored with the row so that a restart can
    # continue the turn; None: nothing to continue (the approval expires at a restart).
    resume: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def grant(self) -> str:
        return grant_name(self.server, self.grant_as or self.tool)
