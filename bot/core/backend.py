"""The Backend protocol: one turn in, one stream of TurnEvents out (implemented in bot/backends)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from bot.core.events import TurnEvent
from bot.core.resume import Resumable
from bot.core.state import ConversationState, TurnRequest


class Backend(Protocol):
    """Runs a turn. Promises: every tool call carries a stable call id; the stream ends with
    exactly one TurnCompleted (carrying the state to store) or one TurnFailed (storing only the
    state it carries, if any: completed tool rounds or a repaired history); errors become
    TurnFailed, never exceptions; no state it hands out makes a later request fail."""

    name: str

    def run_turn(
        self, state: ConversationState, request: TurnRequest
    ) -> AsyncIterator[TurnEvent]: ...

    def resume_turn(
        self, state: ConversationState, request: TurnRequest, resumed: Resumable
    ) -> AsyncIterator[TurnEvent]:
        """The turn a restart cut while it waited for an approval (or ran what was approved),
        from where it stood; the same promises as run_turn, and no call runs twice."""
        ...

    async def aclose(self) -> None: ...
