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
from bot.backends.chat_transport import import_litellm, needs_litellm
from bot.config import ConfigError, Settings, load_settings
from bot.core.approvals import policy_of, rules_of
from bot.core.limits import UserLimits
from bot.core.tool_calls import ToolExecutor
from bot.discord.access import Access
from bot.logs import setup_logging
from bot.ops.reload import changed_keys, keep_restart_only, split_changes, summarize

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
        from bot.backends.factory import configured_models, make_backend

        core, bot = self._core, self._bot
        if new.llm.backend == "chat" and needs_litellm(configured_models(new)):
            # Seconds and ~130 MB the first time, so only for a model only litellm speaks (as at
            # start-up), and not on the loop.
            await asyncio.to_thread(import_litellm)
        await core.tools.reconfigure(new.mcp.servers)
        if core.sampler is not None:
            core.sampler.use(new.llm)
        policies = {name: policy_of(server) for name, server in new.mcp.servers.items()}
        # Servers' questions keep going to users (their timeout is restart-only, like approvals').
        executor = ToolExecutor(
            core.tools,
            policies,
            core.broker,
            core.elicitations,
            self.settings.mcp.approval_timeout_s,
            allowance=self._limits.daily_refusal,
        )
        backend = make_backend(new, executor, core.store.install_secret())
        self.retired.append(core.conversations.backend)
        core.conversations.use_backend(backend)
        self._limits.reconfigure(new.limits)
        setup_logging(new.logging)
        # Who may decide: read at every click, so prompts already shown follow the new rules too.
        core.broker.set_rules(rules_of(new.mcp.servers))
        bot.access = Access(new.discord.permissions)
        bot.services = dataclasses.replace(bot.services, settings=new, policies=policies)

    async def aclose(self) -> None:
        """Close the backends replaced by reloads (the first one is closed by build_core)."""
        current = self._core.conversations.backend
        for backend in [*self.retired[1:], current] if self.retired else []:
            await backend.aclose()
