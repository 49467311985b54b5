"""The Bot subclass: intents, setup_hook (buttons, commands, stale approvals), turn tracking."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import discord
from discord.ext import commands

from bot.discord import handlers
from bot.discord.access import Access
from bot.discord.asks.approvals import ApprovalButton, DiscordApprovals
from bot.discord.asks.elicitation import DiscordElicitations, ElicitButton
from bot.discord.audit import DiscordAudit
from bot.discord.catch_up import catch_up
from bot.discord.commands.conversation import ALL_COMMANDS
from bot.discord.commands.errors import on_command_error
from bot.discord.commands.forget import ForgetButton, forget
from bot.discord.commands.prompt import prompt
from bot.discord.commands.status import status
from bot.discord.commands.stop import StopButton, stop
from bot.discord.commands.system import system
from bot.discord.host import Services
from bot.discord.recent import RecentContext
from bot.discord.resume import resume_or_expire
from bot.discord.streaming.budget import UNLIMITED
from bot.discord.streaming.budget_feed import trace_config
from bot.discord.streaming.deletions import DeletedMessages
from bot.discord.streaming.finishing import wait_for_finishing
from bot.discord.streaming.reactions import ReactionLane
from bot.discord.streaming.share import global_share, limits_for
from bot.discord.streaming.write_scheduler import WriteScheduler
from bot.discord.threads import BotThreads

log = logging.getLogger(__name__)

# How long a shutdown waits for replies writing their final text after the turns were cut.
FINISH_WAIT_S = 60
# The first line of an answer that goes on after a restart, below its approval prompt: shown at
# once, so nobody watches a typing indicator while the prompt waits for its decision.
RESUMED = "continued after a restart"
# A question cut by a shutdown is answered again after the start only if it is this fresh.
CUT_QUESTIONS_MAX_AGE_S = 3600


class _McpcordMixin:
    """Shared by the plain and the auto-sharded bot; see build_bot."""

    services: Services
    access: Access
    approvals: DiscordApprovals
    audit: DiscordAudit | None
    budget: WriteScheduler
    elicitation_ui: DiscordElicitations
    deleted: DeletedMessages
    reactions: ReactionLane
    recent: RecentContext
    threads: BotThreads
    accepting: bool
    _started: bool
    _catching_up: asyncio.Lock
    _turns: set[asyncio.Task[None]]

    def _init_mcpcord(self, services: Services, budget: WriteScheduler) -> None:
        self.services = services
        self.budget = budget
        self.access = Access(services.settings.discord.permissions)
        audit_channel = services.settings.discord.audit_channel_id
        self.audit = (
            DiscordAudit(self, audit_channel, services.store.install_secret())  # type: ignore[arg-type]
            if audit_channel
            else None
        )
        if self.audit is not None:
            services.conversations.add_observer(self.audit.observe)
        self.approvals = DiscordApprovals(
            services.broker, services.store, self.audit, lambda: services.settings
        )
        self.elicitation_ui = DiscordElicitations(services.store)
        self.deleted = DeletedMessages()
        self.reactions = ReactionLane(budget)
        self.recent = RecentContext(budget)
        self.threads = BotThreads()
        self.accepting = True
        self._turns = set()
        self._started = False
        self._catching_up = asyncio.Lock()

    async def setup_hook(self) -> None:
        bot: Any = self
        if self.audit is not None:
            self.audit.start()
        bot.add_dynamic_items(ApprovalButton, ElicitButton, ForgetButton, StopButton)
        bot.add_listener(self.approvals.on_interaction, "on_interaction")
        bot.add_listener(self.elicitation_ui.on_interaction, "on_interaction")
        for command in (*ALL_COMMANDS, prompt, status, system, forget, stop):
            bot.tree.add_command(command)
        bot.tree.error(on_command_error)
        await self._sync_commands()
        # Before the gateway connects: no click or question of the same conversation comes first.
        resumed, expired = await resume_or_expire(bot, self.approvals)
        for turn in resumed:
            answer = handlers.answer(
                bot, turn.prompt, turn.request, None, notice=RESUMED, resumed=turn.resumable
            )
            self.start_turn(answer)
        if expired:
            log.info("%d approval request(s) from before the restart expired", expired)
        questions = await self.elicitation_ui.expire_stale(bot)
        if questions:
            log.info("%d server question(s) from before the restart expired", questions)

    async def _sync_commands(self) -> None:
        """Sync slash commands globally or per listed guild. A guild that refuses (a stale id,
        the bot kicked, no applications.commands scope) is logged; the bot runs on."""
        bot: Any = self
        guild_ids: list[int | None] = list(self.services.settings.discord.command_guild_ids)
        synced: list[int | str] = []
        for guild_id in guild_ids or [None]:
            guild = discord.Object(guild_id) if guild_id is not None else None
            try:
                if guild is not None:
                    bot.tree.copy_global_to(guild=guild)
                await bot.tree.sync(guild=guild)
            except Exception as exc:
                if guild_id is None:
                    log.error(
                        "slash commands: the global sync failed (%s); the bot runs on, and the "
                        "next start tries again",
                        exc,
                    )
                else:
                    log.error(
                        "slash commands: guild %s refused the sync (%s); remove it from "
                        "discord.command_guild_ids, or invite the bot there again with the "
                        "applications.commands scope",
                        guild_id,
                        exc,
                    )
                continue
            synced.append(guild_id if guild_id is not None else "global")
        log.info("slash commands synced (%s)", ", ".join(map(str, synced)) or "nowhere")

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        self.deleted.note(payload.message_id)

    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        for message_id in payload.message_ids:
            self.deleted.note(message_id)

    async def close(self) -> None:
        if self.audit is not None:
            await self.audit.stop()
        await super().close()  # type: ignore[misc]

    async def on_ready(self) -> None:
        bot: Any = self
        log.info("logged in as %s (%s) in %d guild(s)", bot.user, bot.user.id, len(bot.guilds))
        # READY comes at the start and again after every gateway session that had to begin
        # afresh (a resumed one misses nothing: Discord replays it, and on_resumed fires). What
        # was posted while no session was open never came as an event: catch-up reads it.
        if not self._started:
            self._started = True
            self.start_turn(self._after_ready(first=True))
        elif not isinstance(self, commands.AutoShardedBot):
            self.start_turn(self._after_ready(first=False))

    async def on_shard_ready(self, shard_id: int) -> None:
        # Sharded, READY of one shard that began afresh fires only this (on_ready waits for
        # all shards, once). Before the first on_ready, the start's catch-up comes after.
        if self._started:
            log.info("shard %d began a new gateway session", shard_id)
            self.start_turn(self._after_ready(first=False))

    async def _after_ready(self, *, first: bool) -> None:
        """At the start, the questions the last shutdown cut first (they are in the ledger:
        catch-up skips them); then the mentions posted while no session was open. One at a
        time: each catch-up sees the ledger the last one's answers wrote (and a message both
        would take is answered once: handlers.on_message claims it in the ledger)."""
        bot: Any = self
        async with self._catching_up:
            if first:
                await handlers.answer_cut_questions(bot, CUT_QUESTIONS_MAX_AGE_S)
            await catch_up(bot, self.services.settings.discord.catch_up_s)

    async def on_message(self, message: discord.Message) -> None:
        # Our own task, not discord.py's: shutdown can wait for it and then cancel it.
        task = asyncio.create_task(self._answer_safely(message))
        self._turns.add(task)
        task.add_done_callback(self._turns.discard)

    def start_turn(self, turn: Coroutine[Any, Any, None]) -> None:
        """Run a turn started elsewhere (e.g. /prompt) as drain() knows turns."""

        async def safely() -> None:
            try:
                await turn
            except Exception:
                log.exception("a turn failed unexpectedly")

        task = asyncio.create_task(safely())
        self._turns.add(task)
        task.add_done_callback(self._turns.discard)

    async def _answer_safely(self, message: discord.Message) -> None:
        try:
            await handlers.on_message(self, message)  # type: ignore[arg-type]
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("failed to answer message %s", message.id)

    async def drain(self, grace_s: float) -> None:
        """Stop taking new turns; give running ones `grace_s` to finish, then cancel them."""
        self.accepting = False
        pending = set(self._turns)
        if not pending:
            return
        log.info("waiting up to %.0f s for %d running turn(s)", grace_s, len(pending))
        _, still_running = await asyncio.wait(pending, timeout=grace_s)
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running, timeout=5)
        # A reply writing its final text goes on after its turn's cancel (a cut one would keep
        # its indicator and miss parts); the write budget paces it, so it may need longer.
        await wait_for_finishing(FINISH_WAIT_S)


def _intents() -> discord.Intents:
    intents = discord.Intents.default()
    intents.message_content = True  # privileged: enable it in the Developer Portal
    return intents


class McpcordBot(_McpcordMixin, commands.Bot):
    def __init__(self, services: Services, budget: WriteScheduler) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=_intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            http_trace=trace_config(budget),
        )
        self._init_mcpcord(services, budget)


class ShardedMcpcordBot(_McpcordMixin, commands.AutoShardedBot):
    def __init__(self, services: Services, budget: WriteScheduler) -> None:
        discord_config = services.settings.discord
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=_intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            shard_count=discord_config.shard_count,
            shard_ids=discord_config.shard_ids,  # type: ignore[arg-type]  # None = all shards
            http_trace=trace_config(budget),
        )
        self._init_mcpcord(services, budget)


def build_bot(services: Services) -> McpcordBot | ShardedMcpcordBot:
    # One budget for all message writes of this process; it learns from every response
    # through discord.py's http_trace hook. Off, writes go as soon as a reply wants them and
    # only discord.py's own rate limiter holds them back (the bench's baseline).
    # A process running some of the shards plans only its share of the token's global limit,
    # unless a shared window (coordination.redis_url) lets every process plan the whole.
    settings = services.settings.discord
    if settings.write_budget:
        budget = WriteScheduler(
            limits_for(global_share(settings)), gate=services.write_gate, after_restart=True
        )
    else:
        budget = WriteScheduler(UNLIMITED)
    if settings.shard_count:
        return ShardedMcpcordBot(services, budget)
    return McpcordBot(services, budget)
