"""The composition root: builds store, tools, backend and bot from Settings, and runs them."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.backends.chat_transport import needs_litellm
from bot.backends.factory import configured_models, make_backend
from bot.backends.transcription import transcribe
from bot.config import ConfigError, Settings
from bot.core.approvals import ApprovalBroker, ApprovalPolicy, policy_of, rules_of
from bot.core.backend import Backend
from bot.core.conversations import Conversations
from bot.core.elicitation import ElicitationBroker
from bot.core.forgetting import Forgetting
from bot.core.limits import UserLimits
from bot.core.tool_calls import ToolExecutor
from bot.logs import turn_cost
from bot.ops.health import beat, heartbeat_path
from bot.ops.reload import pid_path, remove_pid, write_pid
from bot.store.records import TurnRecord
from bot.store.sqlite import Store
from bot.tools.mcp import MCPTools
from bot.tools.sampling import LiveSampler

if TYPE_CHECKING:
    from bot.ops.live import LiveConfig  # imports discord: only `run` needs it

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Core:
    """The Discord-free part of the service; `chat` and `check` use it without a bot."""

    settings: Settings
    store: Store
    tools: MCPTools
    broker: ApprovalBroker
    policies: dict[str, ApprovalPolicy]
    backend: Backend
    conversations: Conversations
    limits: UserLimits
    elicitations: ElicitationBroker | None = None  # None: servers' questions are declined
    sampler: LiveSampler | None = None  # answers servers' sampling requests; a reload re-aims it


@asynccontextmanager
async def build_core(settings: Settings, *, ask_users: bool = False) -> AsyncIterator[Core]:
    """`ask_users`: a front end can put MCP servers' questions (elicitation) to users;
    without one, every question is declined."""
    preload = None
    if settings.llm.backend == "chat" and needs_litellm(configured_models(settings)):
        # litellm takes seconds to import: do it while the MCP servers start. Bots whose models
        # all speak OpenAI's protocol never import it (see chat_transport.py).
        from bot.backends.chat_transport import import_litellm

        preload = asyncio.create_task(asyncio.to_thread(import_litellm))
    sampler = LiveSampler(settings.llm)
    async with Store.open(settings.storage.path) as store:
        limits = UserLimits(
            settings.limits,
            tokens_since=store.tokens_used_since,
            cost_since=store.cost_used_since,
        )
        bot_side = {n: s for n, s in settings.mcp.servers.items() if not s.server_side}
        async with MCPTools(
            bot_side,
            tool_timeout_s=settings.mcp.tool_timeout_s,
            sampling=settings.mcp.sampling,
            sampler=sampler,
            # A server's request may wait for a human, then for the model; no longer (README),
            # even when the model's retries would take more.
            server_request_timeout_s=settings.mcp.approval_timeout_s
            + settings.llm.request_timeout_s,
            # Offered even without a front end that can ask (the terminal `chat`): a server then
            # hears a plain decline instead of failing its tool for a missing capability.
            elicitation=True,
        ) as tools:
            if preload is not None:
                await preload
            servers = settings.mcp.servers
            broker = ApprovalBroker(
                store,
                timeout_s=settings.mcp.approval_timeout_s,
                rules=rules_of(servers),
            )
            policies = {name: policy_of(server) for name, server in servers.items()}
            elicitations = ElicitationBroker() if ask_users else None
            executor = ToolExecutor(
                tools,
                policies,
                broker,
                elicitations,
                settings.mcp.approval_timeout_s,
                allowance=limits.daily_refusal,
            )
            backend = make_backend(settings, executor, store.install_secret())
            try:
                yield Core(
                    settings=settings,
                    store=store,
                    tools=tools,
                    broker=broker,
                    policies=policies,
                    backend=backend,
                    conversations=Conversations(
                        store, backend, make_record=TurnRecord, cost_of=turn_cost
                    ),
                    limits=limits,
                    elicitations=elicitations,
                    sampler=sampler,
                )
            finally:
                await backend.aclose()


async def serve(settings: Settings) -> None:
    """Run the bot until SIGTERM/SIGINT, then let running turns finish within the grace period;
    re-read the configuration on SIGHUP."""
    if settings.discord_token is None:
        raise ConfigError("DISCORD_TOKEN: not set; put the bot token in the environment or .env")
    token = settings.discord_token.get_secret_value()
    # Installed first: a SIGTERM during start-up must still end in a clean exit.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Also at once: SIGHUP's default action would end the process. A reload asked for during
    # start-up runs as soon as the bot exists.
    reload_asked = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, reload_asked.set)
    # `python -m bot forget-user` on a running bot (bot/ops/forget_user.py).
    forget_asked = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, forget_asked.set)
    pid_file = pid_path(settings)
    write_pid(pid_file)
    try:
        await _serve(settings, token, stop, reload_asked, forget_asked)
    finally:
        remove_pid(pid_file)
    log.info("stopped cleanly")


async def _serve(
    settings: Settings,
    token: str,
    stop: asyncio.Event,
    reload_asked: asyncio.Event,
    forget_asked: asyncio.Event,
) -> None:
    from bot.discord.client import build_bot
    from bot.discord.host import Services
    from bot.ops.forget_user import serve_requests
    from bot.ops.live import LiveConfig
    from bot.ops.maintenance import tidy

    async with build_core(settings, ask_users=True) as core:
        if stop.is_set():
            log.info("stopped during start-up")
            return
        limits = core.limits
        forgetting = Forgetting(core.store, core.conversations, limits)
        coordination = None
        if settings.coordination.redis_url:
            from bot.ops.coordination import connect

            coordination = connect(settings, token, turn_cost)
            limits.share(coordination.limits)
            core.conversations.add_watcher(coordination.limits.watcher)
        services = Services(
            settings=settings,
            store=core.store,
            conversations=core.conversations,
            broker=core.broker,
            limits=limits,
            tools=core.tools,
            policies=core.policies,
            elicitations=core.elicitations,
            forgetting=forgetting,
            short_answer=core.sampler.short if core.sampler else None,
            transcribe=transcribe,
            write_gate=coordination.window if coordination is not None else None,
        )
        bot = build_bot(services)
        live = LiveConfig(settings, core, bot, limits)
        chores = [
            tidy(core.store, settings.storage.retention_days),
            serve_requests(settings, forgetting, forget_asked),
        ]
        metrics_server = None
        if settings.metrics.port is not None:
            from bot.ops.metrics import Metrics

            metrics = Metrics(turn_cost)
            core.conversations.add_watcher(metrics.watcher)
            metrics.watch_bot(bot)
            metrics_server = metrics.serve(settings.metrics.host, settings.metrics.port)
            chores.append(metrics.watch_loop())
        if coordination is not None:
            chores.append(coordination.limits.renew())
        freeze_start_up()
        try:
            await _run_bot(bot, token, live, stop, reload_asked, chores)
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
            if coordination is not None:
                await coordination.link.aclose()
            await live.aclose()


def freeze_start_up() -> None:
    """What start-up built (modules, pydantic schemas, MCP sessions, the bot) lives as long as
    the process. Frozen, it is no longer walked by every full garbage collection: under 200
    streaming answers such a collection held the event loop 80-115 ms (then 30-40 ms).
    Collected first, so no start-up garbage is kept for good."""
    gc.collect()
    gc.freeze()


async def _run_bot(
    bot: Any,
    token: str,
    live: LiveConfig,
    stop: asyncio.Event,
    reload_asked: asyncio.Event,
    chores: list[Coroutine[Any, Any, None]],
) -> None:
    import discord

    async with bot:
        runner = asyncio.create_task(bot.start(token))
        helpers = [
            asyncio.create_task(beat(bot, heartbeat_path(live.settings))),
            asyncio.create_task(_reloads(live, reload_asked)),
            *(asyncio.create_task(chore) for chore in chores),
        ]
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        settings = live.settings
        if runner.done():
            stopper.cancel()
            try:
                runner.result()
            except discord.LoginFailure:
                raise ConfigError(
                    "DISCORD_TOKEN: Discord rejected the token; copy it again from the "
                    "Developer Portal (Bot → Reset Token)"
                ) from None
            except discord.PrivilegedIntentsRequired:
                raise ConfigError(
                    "discord: the Message Content intent is not enabled; turn on "
                    "MESSAGE CONTENT INTENT under Bot in the Developer Portal"
                ) from None
            return
        log.info("shutting down: no new turns, %.0f s grace", settings.shutdown_grace_s)
        await bot.drain(settings.shutdown_grace_s)
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await runner


async def _reloads(live: LiveConfig, asked: asyncio.Event) -> None:
    """One reload per SIGHUP (signals arriving during a reload fold into one more)."""
    while True:
        await asked.wait()
        asked.clear()
        try:
            await live.reload()
        except Exception:
            # A half-applied reload is still better than a dead bot: say so and carry on.
            log.exception("reload failed while applying the new configuration")
