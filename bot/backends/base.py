"""What the backends share: the system prompt's template (the Backend protocol is in bot/core)."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

import openai

from bot.backends.routes import openai_key, route
from bot.config import LLMConfig
from bot.core.backend import Backend
from bot.core.keyed import keyed_hash
from bot.core.state import TurnRequest

__all__ = [
    "Backend",
    "OpenAIClients",
    "openai_client",
    "safety_identifier",
    "sdk_arguments",
    "system_prompt",
    "turn_instructions",
    "user_field",
]


def user_field(user_id: int, enabled: bool) -> str | None:
    """The request's `user`: a hash of the Discord user id (llm.send_user_id), so a LiteLLM
    proxy's per-user budgets and rate limits apply across all shard processes."""
    if not enabled:
        return None
    return hashlib.sha256(f"mcpcord-discord-user:{user_id}".encode()).hexdigest()[:32]


def safety_identifier(secret: bytes, user_id: int, enabled: bool) -> str | None:
    """The Responses request's `safety_identifier` (OpenAI's successor to `user`): an HMAC of the
    Discord user id under the install's secret, so it names one user without being their id."""
    if not enabled:
        return None
    return keyed_hash(secret, "safety-identifier", str(user_id))[:32]


def sdk_arguments(create: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` for an openai SDK `create`: what its signature does not name (a `llm.params`
    entry such as `seed` on the Responses API, or a proxy's own parameter) goes in `extra_body`,
    where the SDK sends it as it is instead of refusing the call."""
    known = _parameters(getattr(create, "__func__", create))
    extra = {k: v for k, v in kwargs.items() if k not in known}
    if not extra:
        return kwargs
    named = {k: v for k, v in kwargs.items() if k in known}
    named["extra_body"] = {**(named.get("extra_body") or {}), **extra}
    return named


@cache
def _parameters(function: Callable[..., Any]) -> frozenset[str]:
    return frozenset(inspect.signature(function).parameters)


def system_prompt(template: str, now: datetime | None = None) -> str:
    """The configured prompt with `{date}` filled in; other braces are left alone."""
    today = (now or datetime.now(UTC)).strftime("%A %d %B %Y")
    return template.replace("{date}", today)


def turn_instructions(request: TurnRequest, default: str) -> str:
    """A request's system prompt, with the turn's recent channel messages after it. They go
    here, not in the input: instructions are neither kept in our history nor carried over a
    stored Responses chain (`previous_response_id`), so the block is sent with this turn only."""
    prompt = system_prompt(request.system_prompt or default)
    return f"{prompt}\n\n{request.context}" if request.context else prompt


def openai_client(llm: LLMConfig, model: str | None = None) -> openai.AsyncOpenAI:
    """The openai SDK client both backends use for `model` (default `llm.model`): its server
    and key as bot/backends/routes.py decides."""
    found = route(llm, model or llm.model)
    return openai.AsyncOpenAI(
        base_url=found.base_url,
        api_key=openai_key(found),
        timeout=llm.request_timeout_s,
        max_retries=0,  # retries are ours: we know whether text was already shown
        # The SDK's aiohttp transport (aiohttp comes with discord.py): reading a stream costs
        # about a fifth less CPU per delta than its default httpx transport, which registers
        # and unregisters the socket with the selector on every read. Timeouts are per request.
        http_client=openai.DefaultAioHttpClient(),
    )


class OpenAIClients:
    """One openai SDK client per server and key: a model with its own gets its own client, and
    models that share both share one (and its connection pool)."""

    def __init__(self, llm: LLMConfig) -> None:
        self._llm = llm
        self._clients: dict[tuple[str | None, str], openai.AsyncOpenAI] = {}

    def for_model(self, model: str) -> openai.AsyncOpenAI:
        found = route(self._llm, model)
        where = (found.base_url, found.key_name)
        if where not in self._clients:
            self._clients[where] = openai_client(self._llm, model)
        return self._clients[where]

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()
