"""The Backend protocol: one turn in, one stream of TurnEvents out (implemented in bot/backends)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from bot.core.events import TurnEvent
from bot.core.state import ConversationState, TurnRequest


class Backend(Protocol):
    """Runs a turn. Promises: every tool call carries a stable call id; the stream ends with
    exactly one TurnCompleted (carrying the state to store) or one TurnFailed (store nothing);
    errors become TurnFailed, never exceptions."""

    name: str

    def run_turn(
        self, state: ConversationState, request: TurnRequest
    ) -> AsyncIterator[TurnEvent]: ...

    async def aclose(self) -> None: ...
