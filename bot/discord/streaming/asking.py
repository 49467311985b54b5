"""Posting a turn's prompt (an approval or a server's question) from the renderer; a prompt
that cannot be posted ends the turn with a plain line and one log line."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import discord

from bot.core.events import ApprovalRequested, ApprovalResolved, TurnEvent
from bot.discord.streaming.retry import describe, with_retries

log = logging.getLogger(__name__)

PROMPT_FAILED = "I couldn't post the approval request here, so the tool was not run. Try again."


class QuestionNotAsked(Exception):
    """A turn's prompt could not be posted: the turn ends there, its reply says why."""


class ApprovalUI(Protocol):
    async def send_prompt(
        self, event: ApprovalRequested, anchor: discord.Message
    ) -> discord.Message: ...
    async def show_resolution(self, event: ApprovalResolved) -> None: ...


async def post_prompt(
    ui: Any, event: TurnEvent, anchor: discord.Message, channel_id: int
) -> discord.Message:
    """The prompt, posted (transient failures retried); QuestionNotAsked when it cannot be."""
    try:
        prompt: discord.Message = await with_retries(
            "asking", lambda: ui.send_prompt(event, anchor)
        )
    except Exception as exc:
        log.warning(
            "could not post the approval request in channel %s, the turn ends: %s",
            channel_id,
            describe(exc),
        )
        raise QuestionNotAsked from exc
    return prompt
