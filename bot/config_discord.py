"""`discord.reactions` and `discord.approvals`: how the bot shows a turn's state and reaches approvers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ReactionsConfig(BaseModel):
    """One emoji per state of a turn, on the asker's message; null skips that state."""

    # As bot/config.py's sections: the docstrings are docs/config.md's descriptions.
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    queued: str | None = "⏳"
    """Waiting behind another question of the same conversation."""
    working: str | None = "👀"
    """The turn started (before the model is asked)."""
    tool: str | None = "🔧"
    """A tool runs."""
    approval: str | None = "✋"
    """Waiting for someone to approve a tool call."""
    done: str | None = "✅"
    """Answered."""
    failed: str | None = "❌"
    """The answer failed."""
    stopped: str | None = "⏹"
    """Stopped by /stop or the Stop button."""


class ApprovalDelivery(BaseModel):
    """Approval prompts that reach the approvers even when they are not watching the channel."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    dm: bool = False
    """Also send each approver user of the server (approvers.users, else admin_ids) who can view the channel a DM copy with working buttons."""
    ping_roles: bool = False
    """The channel prompt pings the server's approvers.roles (only those roles)."""
