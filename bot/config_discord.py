"""`discord.reactions`: the emoji that show a turn's state on the asker's message."""

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
