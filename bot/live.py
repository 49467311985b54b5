"""Applies a re-read configuration to the running bot (SIGHUP or `python -m bot reload`).

New turns see the new configuration; a running turn keeps the backend, prompt and policies it
started with (it holds its own references). A configuration with a mistake changes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from bot.backends.base import Backend
from bot.config import ConfigError, Settings, load_settings
from bot.core.approvals import ApprovalPolicy
from bot.core.limits import UserLimits
from bot.core.tool_calls import ToolExecutor
from bot.discord.access import Access
from bot.logs import setup_logging
from bot.reload import changed_keys, keep_restart_only, split_changes, summarize

log = logging.getLogger(__name__)


class LiveConfig:
    def __init__(self, settings: Settings, core: Any, bot: Any, limits: UserLimits) -> None:
        self.settings = settings
        self._core = core
        self._bot = bot
        self._limits = limits
        self.retired: list[Backend] = []  # closed at shutdown: running turns may still use them

    async def reload(self) -> None:
        try:
            new = await asyncio.to_thread(load_settings)
        except ConfigError as exc:
            for line in str(exc).splitlines():
                log.error("reload refused, the running configuration stays: config error: %s", line)
            return
        applied, later = split_changes(changed_keys(self.settings, new))
        new = keep_restart_only(self.settings, new)
        if applied:
            await self._apply(new)
        self.settings = new
        line = f"config reloaded: changed {summarize(applied) or 'nothing'}"
        if later:
            line += f"; needs a restart: {summarize(later)}"
        log.info("%s", line)

    async def _apply(self, new: Settings) -> None:
        from bot.app import make_backend

        core, bot = self._core, self._bot
        if new.llm.backend == "chat":
            from bot.backends.chat import import_litellm

            await asyncio.to_thread(import_litellm)  # seconds, the first time: not on the loop
        await core.tools.reconfigure(new.mcp.servers)
        policies = {
            name: ApprovalPolicy(server.require_approval)
            for name, server in new.mcp.servers.items()
        }
        # Servers' questions keep going to users (their timeout is restart-only, like approvals').
        executor = ToolExecutor(
            core.tools,
            policies,
            core.broker,
            core.elicitations,
            self.settings.mcp.approval_timeout_s,
            allowance=self._limits.daily_refusal,
        )
        backend = make_backend(new, executor)
        self.retired.append(core.conversations.backend)
        core.conversations.use_backend(backend)
        self._limits.reconfigure(new.limits)
        setup_logging(new.logging)
        bot.access = Access(new.discord.permissions)
        bot.services = dataclasses.replace(bot.services, settings=new, policies=policies)

    async def aclose(self) -> None:
        """Close the backends replaced by reloads (the first one is closed by build_core)."""
        current = self._core.conversations.backend
        for backend in [*self.retired[1:], current] if self.retired else []:
            await backend.aclose()
