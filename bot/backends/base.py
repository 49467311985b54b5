"""What the backends share: the system prompt's template (the Backend protocol is in bot/core)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from bot.core.backend import Backend

__all__ = ["Backend", "system_prompt", "user_field"]


def user_field(user_id: int, enabled: bool) -> str | None:
    """The request's `user`: a hash of the Discord user id (llm.send_user_id), so a LiteLLM
    proxy's per-user budgets and rate limits apply across all shard processes."""
    if not enabled:
        return None
    return hashlib.sha256(f"mcpcord-discord-user:{user_id}".encode()).hexdigest()[:32]


def system_prompt(template: str, now: datetime | None = None) -> str:
    """The configured prompt with `{date}` filled in; other braces are left alone."""
    today = (now or datetime.now(UTC)).strftime("%A %d %B %Y")
    return template.replace("{date}", today)
