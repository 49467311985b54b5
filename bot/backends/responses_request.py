"""The parameters of one Responses request: what the bot owns, and who asks in which conversation."""

from __future__ import annotations

from typing import Any

from bot.backends.base import safety_identifier, system_prompt, user_field
from bot.backends.prompt_cache import cache_key, keys_cache
from bot.backends.routes import route
from bot.config import LLMConfig
from bot.core.state import TurnRequest


def request_extras(
    llm: LLMConfig, secret: bytes | None, request: TurnRequest, model: str
) -> dict[str, Any]:
    """Who asks and which conversation, the same on every request of the turn."""
    extras: dict[str, Any] = {}
    if user := user_field(request.user_id, llm.send_user_id):
        extras["user"] = user  # as before: a LiteLLM proxy's budgets are keyed on it
    if secret is None:
        return extras
    if safety := safety_identifier(secret, request.user_id, llm.send_user_id):
        extras["safety_identifier"] = safety
    if keys_cache(llm.prompt_cache, model, route(llm, model).base_url, chat=False):
        extras["prompt_cache_key"] = cache_key(secret, request.key)
    return extras


def request_arguments(
    llm: LLMConfig,
    model: str,
    items: list[dict[str, Any]],
    previous: str | None,
    tools: list[dict[str, Any]],
    last_round: bool,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": model,
        # Sent every request: the API does not carry instructions over previous_response_id.
        "instructions": system_prompt(llm.system_prompt),
        "input": items,
        "stream": True,
        **llm.params,
    }
    if previous is not None:
        kwargs["previous_response_id"] = previous
    if llm.state == "server":
        # The API's default (disabled) refuses every request once the stored conversation
        # outgrows the window; `auto` drops its oldest items instead.
        kwargs["truncation"] = llm.truncation
    if tools:
        kwargs["tools"] = tools
        if last_round:
            kwargs["tool_choice"] = "none"
    return kwargs
