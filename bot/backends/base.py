"""What the backends share: the system prompt's template (the Backend protocol is in bot/core)."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

import openai

from bot.config import LLMConfig
from bot.core.backend import Backend

__all__ = ["Backend", "openai_client", "system_prompt", "user_field"]


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


# The SDK refuses to build a client without a key; a keyless local server ignores it.
_PLACEHOLDER_KEY = "not-set"


def openai_client(llm: LLMConfig) -> openai.AsyncOpenAI:
    """The openai SDK client both backends use: LLM__API_KEY, else OPENAI_API_KEY, else none."""
    api_key = (
        llm.api_key.get_secret_value()
        if llm.api_key is not None
        else os.environ.get("OPENAI_API_KEY") or _PLACEHOLDER_KEY
    )
    return openai.AsyncOpenAI(
        base_url=llm.base_url,
        api_key=api_key,
        timeout=llm.request_timeout_s,
        max_retries=0,  # retries are ours: we know whether text was already shown
        # The SDK's aiohttp transport (aiohttp comes with discord.py): reading a stream costs
        # about a fifth less CPU per delta than its default httpx transport, which registers
        # and unregisters the socket with the selector on every read. Timeouts are per request.
        http_client=openai.DefaultAioHttpClient(),
    )
