"""Prompt caching (`llm.prompt_cache`): cache breakpoints and a cache key, where they are taken.

Anthropic (and Claude on Bedrock and Vertex) caches only what a request marks with
`cache_control`: the bot marks the system prompt (which caches the tools before it too) and the
last stored message before the new question, so a turn pays full price only for what is new.
OpenAI caches by itself; `prompt_cache_key` keeps one conversation's requests on the same cache.
The key is an HMAC of the conversation key under the install's secret: stable across turns,
never a Discord id, not guessable from public ids.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from bot.backends.model_info import model_info
from bot.backends.routes import provider
from bot.core.keyed import keyed_hash
from bot.core.state import ConversationKey

BREAKPOINT = {"type": "ephemeral"}
# litellm's names of the providers that take `cache_control` (Claude wherever it is served).
MARKING_PROVIDERS = ("anthropic", "bedrock", "vertex_ai")
OPENAI_HOSTS = ("api.openai.com",)


def marks_cache(setting: str, model: str) -> bool:
    """Send `cache_control` breakpoints to this chat model? `auto`: only to Anthropic-style
    models that litellm itself sends to their provider (its map says they cache)."""
    if setting != "auto":
        return setting == "on"
    if provider(model) not in MARKING_PROVIDERS:
        return False
    info = model_info(model)
    return info.supports_prompt_caching if info is not None else "claude" in model


def keys_cache(setting: str, model: str, base_url: str | None, *, chat: bool) -> bool:
    """Send `prompt_cache_key`? Only where OpenAI's parameters go as they are (a chat model
    `openai/...` or `litellm_proxy/...`, any responses model; litellm refuses it for providers
    that do not take it). `auto`: only to OpenAI's own API, with no other server in between."""
    if setting == "off" or (chat and provider(model) not in ("openai", "litellm_proxy")):
        return False
    if setting == "on":
        return True
    if chat and provider(model) != "openai":
        return False
    return base_url is None or urlparse(base_url).hostname in OPENAI_HOSTS


def cache_key(secret: bytes, key: ConversationKey) -> str:
    return keyed_hash(secret, "prompt-cache", str(key))[:32]


def with_breakpoints(messages: list[dict[str, Any]], stable: int) -> list[dict[str, Any]]:
    """`messages` (system first) with the system prompt and `messages[stable]` (the last stored
    message before the question; -1 for none) marked, at most 2 of Anthropic's 4 breakpoints.
    Copies: the stored history is left as it was."""
    marked = list(messages)
    if marked:
        marked[0] = _marked(marked[0]) or marked[0]
    # An assistant message with tool calls only has nothing to mark: the one before it caches
    # almost as much.
    for at in range(min(stable, len(marked) - 1), 0, -1):
        message = _marked(marked[at])
        if message is not None:
            marked[at] = message
            break
    return marked


def _marked(message: dict[str, Any]) -> dict[str, Any] | None:
    content = message.get("content")
    if isinstance(content, str) and content:
        parts: list[Any] = [{"type": "text", "text": content, "cache_control": BREAKPOINT}]
    elif isinstance(content, list) and content and isinstance(content[-1], dict):
        parts = [*content[:-1], {**content[-1], "cache_control": BREAKPOINT}]
    else:
        return None
    return {**message, "content": parts}
