"""Plain values for a conversation: its key, its stored state, and one turn's request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.core.stops import StopSignal, new_turn_id


@dataclass(frozen=True, kw_only=True)
class ConversationKey:
    """Where a conversation lives. `user_id` is 0 for channel- and thread-scoped conversations."""

    guild_id: int  # 0 for DMs
    channel_id: int
    user_id: int = 0

    def __str__(self) -> str:
        return f"{self.guild_id}:{self.channel_id}:{self.user_id}"

    @classmethod
    def parse(cls, text: str) -> ConversationKey:
        guild, channel, user = (int(part) for part in text.split(":"))
        return cls(guild_id=guild, channel_id=channel, user_id=user)


@dataclass(frozen=True, kw_only=True)
class ConversationState:
    """What a backend needs to continue a conversation.

    The chat backend keeps `history` (OpenAI chat messages); the responses backend keeps either
    `previous_response_id` (state: server) or `history` as Responses input items (state: local).
    """

    backend: str = ""
    history: tuple[dict[str, Any], ...] = ()
    previous_response_id: str | None = None
    model: str | None = None  # a /model choice that overrides llm.model for this conversation


@dataclass(kw_only=True)
class CutTurn:
    """What a turn has done so far, kept by its backend as it goes: a turn cut by a shutdown (or
    closed by the front end) ends without a final event, and then this is what is stored.
    Completed tool rounds only, never the words of a round in progress."""

    state: ConversationState | None = None  # after the last completed tool round
    usage: Any = None  # bot.core.events.Usage (which imports this module): tokens spent
    model: str | None = None
    # A tool started or an approval was asked: the question is then not asked again after a
    # restart (a tool must not run twice; an approval is the user's to decide).
    acted: bool = False

    def spend(self, usage: Any, model: str) -> None:
        self.usage = usage if self.usage is None else self.usage + usage
        self.model = model


@dataclass(kw_only=True)
class ResumeNotes:
    """Where a turn that asked for an approval stands, kept by its backend as it goes, so that a
    restart can continue it (bot/core/resume.py): `position` is plain JSON values, set before
    each tool call and after each tool round; `approval_id` is the approval row that stores it
    (none until the turn asks, so turns that never ask write nothing)."""

    position: dict[str, Any] | None = None
    approval_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class TurnRequest:
    key: ConversationKey
    user_id: int
    user_name: str
    text: str
    image_urls: tuple[str, ...] = field(default_factory=tuple)
    is_admin: bool = False
    system_prompt: str | None = None  # /system, else discord.channels, else llm.system_prompt
    model: str | None = None  # the channel's default model; a conversation's /model choice wins
    # Recent channel messages for this turn's requests only: sent with the instructions, never
    # stored, so other people's words do not end up in this conversation's history.
    context: str | None = None
    # Names this turn in a Stop button's custom_id; `stop` is how /stop and the button reach it.
    turn_id: str = field(default_factory=new_turn_id)
    stop: StopSignal = field(default_factory=StopSignal, compare=False, repr=False)
    cut: CutTurn = field(default_factory=CutTurn, compare=False, repr=False)
    resume: ResumeNotes = field(default_factory=ResumeNotes, compare=False, repr=False)
