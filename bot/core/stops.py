"""Stopping a running turn on a person's request: the signal each turn carries, and how a backend
tells a stop from a shutdown when the cancellation reaches it."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

# What a tool call that a stop interrupted answers the model: it may have done its work.
STOPPED_WHILE_RUNNING = (
    "The user stopped the answer while this tool call was running; it may or may not have run."
)
STOPPED_BEFORE_RUNNING = "The user stopped the answer before this tool call ran. It was not run."


def new_turn_id() -> str:
    """An id for a custom_id (`mcps:<turn id>`): [A-Za-z0-9_-], 16 characters, unique across
    restarts without any stored counter."""
    return secrets.token_urlsafe(12)


class StopSignal:
    """Whether, and by whom, a turn was stopped. While the turn's backend runs, the core arms it
    with a way to cancel whatever the backend awaits (the LLM stream, a tool call, an approval);
    once the turn has its final event it is disarmed, so its save is never cut."""

    def __init__(self) -> None:
        self.by: str | None = None
        self._cancel: Callable[[], object] | None = None

    @property
    def requested(self) -> bool:
        return self.by is not None

    @property
    def armed(self) -> bool:
        return self._cancel is not None

    def arm(self, cancel: Callable[[], object]) -> None:
        self._cancel = cancel

    def disarm(self) -> None:
        self._cancel = None

    def request(self, by: str) -> bool:
        """Stop the turn, naming who did; False when it is not running (any more) or already
        stopped."""
        cancel = self._cancel
        if cancel is None or self.by is not None:
            return False
        self.by = by or "someone"
        self._cancel = None
        cancel()
        return True


def stopped_here(signal: StopSignal) -> bool:
    """Called in `except asyncio.CancelledError`: True when a person stopped the turn (the
    cancellation is then taken back, and the caller ends the turn with what it has); False for
    a shutdown or a closed consumer, which the caller re-raises."""
    if not signal.requested:
        return False
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        task.uncancel()
    return True
