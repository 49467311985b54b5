"""Builds the configured backend: shared by the composition root and a reload, so neither imports the other."""

from __future__ import annotations

from bot.config import Settings
from bot.core.backend import Backend
from bot.core.tool_calls import ToolExecutor


def make_backend(settings: Settings, executor: ToolExecutor, secret: bytes) -> Backend:
    """`secret`: the install's (Store.install_secret), for the hashes sent to providers."""
    if settings.llm.backend == "responses":
        from bot.backends.responses import ResponsesBackend

        return ResponsesBackend(
            settings.llm, tools=executor, servers=settings.mcp.servers, secret=secret
        )
    from bot.backends.chat import ChatBackend

    return ChatBackend(settings.llm, tools=executor, secret=secret)


def configured_models(settings: Settings) -> list[str]:
    """Every model a turn may use: the default, /model choices, fallbacks, channels' own."""
    llm = settings.llm
    channel_models = [c.model for c in settings.discord.channels.values() if c.model]
    return [llm.model, *llm.model_names(), *llm.fallback_names(), *channel_models]
