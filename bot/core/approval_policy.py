"""Which calls ask a person first: a server's `require_approval` and its read-only shortcut."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.config import ApprovalLists, ApprovalSetting, MCPServerConfig


@dataclass(frozen=True)
class ApprovalPolicy:
    """`require_approval` of one server (never, always, or lists where unlisted tools ask), and
    whether tools the server annotates read-only run unasked."""

    setting: ApprovalSetting = "always"
    auto_approve_read_only: bool = False

    def needs_approval(self, tool: str, *, read_only: bool = False) -> bool:
        return self.unasked_because(tool, read_only=read_only) is None

    def unasked_because(self, tool: str, *, read_only: bool = False) -> str | None:
        """Why this tool runs without asking, or None when it asks."""
        if self.auto_approve_read_only and read_only:
            return "read-only"
        if self.setting == "never":
            return "require_approval: never"
        if self.setting == "always":
            return None
        assert isinstance(self.setting, ApprovalLists)
        return None if tool not in self.setting.never else "listed under never"

    def describe(self) -> str:
        text: str
        if isinstance(self.setting, str):
            text = self.setting
        else:
            never = ", ".join(self.setting.never) or "none"
            text = f"never for: {never}; always for the rest"
        return text + ("; read-only tools run unasked" if self.auto_approve_read_only else "")


def is_read_only(annotations: Any) -> bool:
    """An MCP tool annotated readOnlyHint, and not also destructiveHint (a contradiction that is
    resolved towards asking)."""
    return (
        annotations is not None
        and getattr(annotations, "read_only_hint", None) is True
        and getattr(annotations, "destructive_hint", None) is not True
    )


def policy_of(server: MCPServerConfig) -> ApprovalPolicy:
    return ApprovalPolicy(server.require_approval, server.auto_approve_read_only)
