"""The small sections of `discord`: reactions, approval delivery, attachments."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
    """Where approval prompts reach the people who decide them, besides the channel."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    dm: bool = False
    """Also send each prompt by DM to the server's approver users (`approvers.users`, or `admin_ids` when it lists none) who can view the channel; a click there counts as one in the channel."""
    ping_roles: bool = False
    """The channel prompt pings the server's `approvers.roles`."""


class AttachmentsConfig(BaseModel):
    """`discord.attachments`: files attached to a question."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    max_bytes: int = Field(default=2_000_000, ge=1)
    """Text, code and PDF files larger than this are skipped (with a line saying so)."""
    max_chars: int = Field(default=20_000, ge=100)
    """Text taken from one file; the rest is cut and the model is told so."""
