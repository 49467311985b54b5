"""What handlers, commands and prompts may use of the running bot: a Protocol, not the client class.

The client imports them; they import this. That keeps the arrows one way (no circle through
`McpcordBot`) and shows in one place everything the rest of the Discord layer relies on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import discord

from bot.config import Settings
from bot.core.approvals import ApprovalBroker, ApprovalPolicy
from bot.core.conversations import Conversations
from bot.core.limits import UserLimits
from bot.core.voice import Transcribe
from bot.discord.access import Access
from bot.discord.asks.approval_copies import PromptCopies
from bot.discord.audit import DiscordAudit
from bot.discord.recent import RecentContext
from bot.discord.streaming.asking import ApprovalUI
from bot.discord.streaming.deletions import DeletedMessages
from bot.discord.streaming.reactions import ReactionLane
from bot.discord.streaming.write_scheduler import GlobalGate, WriteScheduler
from bot.discord.threads import BotThreads


@dataclass(frozen=True, kw_only=True)
class Services:
    """Everything the Discord layer uses, built by the composition root."""

    settings: Settings
    store: Any
    conversations: Conversations
    broker: ApprovalBroker
    limits: UserLimits
    tools: Any  # MCPTools or None
    policies: dict[str, ApprovalPolicy]
    elicitations: Any = None  # ElicitationBroker: MCP servers' questions to users
    forgetting: Any = None  # core/forgetting.py's Forgetting: /forget and forget-user
    # (system, text, max_tokens) -> the model's few words, e.g. a thread's title; None = none.
    short_answer: Callable[[str, str, int], Awaitable[str]] | None = None
    # Audio to text (bot/backends/transcription.py); used while llm.transcription_model is set.
    transcribe: Transcribe | None = None
    write_gate: GlobalGate | None = None  # the global window shared with other processes


class ApprovalPrompts(ApprovalUI, Protocol):
    """The approval prompts as the renderer uses them, plus the open-form register."""

    copies: PromptCopies  # the channel prompt and its DM copies

    def opened(self, modal: discord.ui.Modal) -> None: ...
    def closed(self, modal: discord.ui.Modal) -> None: ...


class BotHost(Protocol):
    """The bot as seen from a handler, a command or a prompt."""

    services: Services
    access: Access
    approvals: ApprovalPrompts
    audit: DiscordAudit | None
    budget: WriteScheduler
    elicitation_ui: Any  # asks/elicitation.py's DiscordElicitations (a wing the door can't import)
    deleted: DeletedMessages
    reactions: ReactionLane
    recent: RecentContext
    threads: BotThreads
    accepting: bool

    @property
    def user(self) -> discord.ClientUser | None: ...

    def start_turn(self, turn: Coroutine[Any, Any, None]) -> None: ...

    def get_partial_messageable(
        self, id: int, *, guild_id: int | None = None, type: discord.ChannelType | None = None
    ) -> discord.PartialMessageable: ...
