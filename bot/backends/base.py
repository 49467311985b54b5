"""What the backends share: the system prompt's template (the Backend protocol is in bot/core)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.backend import Backend

__all__ = ["Backend", "system_prompt"]


def system_prompt(template: str, now: datetime | None = None) -> str:
    """The configured prompt with `{date}` filled in; other braces are left alone."""
    today = (now or datetime.now(UTC)).strftime("%A %d %B %Y")
    return template.replace("{date}", today)
