"""What a reply shows of the model's reasoning (`llm.reasoning: hide | status | summary`).

Kept apart from the renderer: it decides only how the first reply message frames the answer.
The reasoning itself never becomes answer text.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.core.events import ReasoningDelta, TextDelta, TurnEvent


class ReasoningView:
    def __init__(self, mode: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._mode = mode
        self._clock = clock
        self._started: float | None = None
        self._summary: list[str] = []
        self._answering = False

    def apply(self, event: TurnEvent) -> bool:
        """Fold one event in; True if the reply should be redrawn."""
        if isinstance(event, TextDelta) and event.text:
            self._answering = True
            return False
        if not isinstance(event, ReasoningDelta) or self._mode == "hide":
            return False
        if self._started is None:
            self._started = self._clock()
        if self._mode == "summary" and event.text:
            self._summary.append(event.text)
            return True
        return not self._answering

    def frame(self, answer: str, *, final: bool) -> str:
        """The first message's text: the answer, with the reasoning shown the configured way.

        `status`: a small line (`-# thinking… 12 s`) while the model reasons before any text;
        the answer replaces it. `summary`: the summary stays above the answer in small text.
        """
        if self._mode == "summary" and self._summary:
            lines = "".join(self._summary).strip().splitlines()
            small = "\n".join(f"-# {line.strip()}" for line in lines if line.strip())
            return f"{small}\n{answer}" if answer else small
        if self._mode == "status" and self._started is not None and not answer and not final:
            return f"-# thinking… {int(self._clock() - self._started)} s"
        return answer
