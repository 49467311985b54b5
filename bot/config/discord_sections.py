"""The small sections of `discord`: permissions, reactions, recent context, bot threads,
approval delivery, attachments."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ReactionsConfig(BaseModel):
    """One emoji per state of a turn, on the asker's message; null skips that state."""

    # As bot/config.py's sections: the docstrings are docs/config.md's descriptions.
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    queued: str | None = "⏳"
    """Waiting behind another question of the same conversation."""
    working: str | None = "👀"
    """The turn started (before the model is asked)."""
    tool: str | None = "🔧"
    """A tool runs."""
    approval: str | None = "✋"
    """Waiting for someone to approve a tool call."""
    done: str | None = "✅"
    """Answered."""
    failed: str | None = "❌"
    """The answer failed."""
    stopped: str | None = "⏹"
    """Stopped by /stop or the Stop button."""


class RecentContextConfig(BaseModel):
    """`discord.recent_context`: the channel's last messages before a question, as context."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    messages: int = Field(default=0, ge=0, le=50)
    """How many of the channel's (or thread's) latest messages go with a question, each with
    its author's name; 0 = none. Sent with that question only, never stored. Needs the Read
    Message History permission; left out of a question that would wait over a second for
    room in Discord's global rate limit."""
    max_age_s: float = Field(default=3600, gt=0)
    """Messages older than this many seconds are left out."""


class ConversationOptions(BaseModel):
    """The discord section's keys for what a question brings along and how bot threads go on."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    recent_context: RecentContextConfig = Field(default_factory=RecentContextConfig)
    """Recent channel messages sent with a question (not stored in the conversation)."""
    threads_without_mention: bool = True
    """With `reply_in_thread`, follow-ups in a thread the bot created are answered without a
    mention: the asker's (with `scope: thread`, anyone's), unless they mention or reply to
    someone else."""
    thread_title: Literal["first_words", "generated"] = "first_words"
    """A bot thread's title: the question's first words, or `generated`: after the first
    answer the model writes a 3-6 word title and the thread is renamed once."""


class ApprovalDelivery(BaseModel):
    """Where approval prompts reach the people who decide them, besides the channel."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    dm: bool = False
    """Also send each prompt by DM to the server's approver users (`approvers.users`, or `admin_ids` when it lists none) who can view the channel; a click there counts as one in the channel."""
    ping_roles: bool = False
    """The channel prompt pings the server's `approvers.roles`."""


class AttachmentsConfig(BaseModel):
    """`discord.attachments`: files attached to a question."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    max_bytes: int = Field(default=2_000_000, ge=1)
    """Text, code and PDF files larger than this are skipped (with a line saying so)."""
    max_chars: int = Field(default=20_000, ge=100)
    """Text taken from one file; the rest is cut and the model is told so."""
    max_audio_s: float = Field(default=300, gt=0)
    """Voice messages longer than this (Discord's `duration_secs`) are not transcribed (a line
    says so); needs `llm.transcription_model`."""
    max_audio_bytes: int = Field(default=8_388_608, ge=1)
    """Voice messages and audio files larger than this are not transcribed (a line says so)."""


class AllowBlock(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    allow: list[int] = Field(default_factory=list)
    """Ids allowed; an empty list allows everyone."""
    block: list[int] = Field(default_factory=list)
    """Ids refused; block wins over allow."""


class PermissionsConfig(BaseModel):
    """`discord.permissions`: who may use the bot where, and who manages it."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    users: AllowBlock = Field(default_factory=AllowBlock)
    """User ids."""
    roles: AllowBlock = Field(default_factory=AllowBlock)
    """Role ids."""
    channels: AllowBlock = Field(default_factory=AllowBlock)
    """Channel ids (threads follow their parent channel)."""
    admin_ids: list[int] = Field(default_factory=list)
    """User ids that bypass the lists, may decide any approval and may `/reset everyone`."""
    manager_roles: list[int] = Field(default_factory=list)
    """Role ids that may `/model` and `/reset` conversations shared by a channel or thread, and
    set or clear a channel's `/system` prompt (admins may too)."""
