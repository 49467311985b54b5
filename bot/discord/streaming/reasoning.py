"""What a reply shows of the model's reasoning (`llm.reasoning: hide | status | summary`).

Kept apart from the renderer: it decides only how the first reply message frames the answer.
The reasoning itself never becomes answer text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bot.core.events import ReasoningDelta, TextDelta, TurnEvent

TICK_S = 2.0  # how often the status line's seconds move while no reasoning events arrive
# Raw reasoning (chat `reasoning_content`) can run to pages; above the answer it stays a preview.
SUMMARY_MAX_CHARS = 1200


class ReasoningView:
    def __init__(
        self,
        mode: str,
        *,
        wake: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        tick_s: float = TICK_S,
    ) -> None:
        self._mode = mode
        self._wake = wake  # asks the renderer to redraw, so the seconds keep counting
        self._clock = clock
        self._tick_s = tick_s
        self._started: float | None = None
        self._summary: list[str] = []
        self._answering = False
        self._done = False
        self._timer: asyncio.TimerHandle | None = None

    def apply(self, event: TurnEvent) -> bool:
        """Fold one event in; True if the reply should be redrawn."""
        if isinstance(event, TextDelta) and event.text:
            self._answering = True
            return False
        if not isinstance(event, ReasoningDelta) or self._mode == "hide":
            return False
        if self._started is None:
            self._started = self._clock()
            if self._mode == "status" and self._wake is not None:
                # Some models reason silently (no summary deltas) for a minute: keep counting.
                self._timer = asyncio.get_running_loop().call_later(self._tick_s, self._tick)
        if self._mode == "summary" and event.text:
            self._summary.append(event.text)
            return True
        return not self._answering

    def frame(self, answer: str, *, final: bool) -> str:
        """The first message's text: the answer, with the reasoning shown the configured way.

        `status`: a small line (`-# thinking… 12 s`) while the model reasons before any text;
        the answer replaces it. `summary`: the summary stays above the answer in small text.
        """
        if final:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
        if self._mode == "summary" and self._summary:
            summary = "".join(self._summary).strip()
            if len(summary) > SUMMARY_MAX_CHARS:
                summary = summary[:SUMMARY_MAX_CHARS].rstrip() + " …"
            lines = summary.splitlines()
            small = "\n".join(f"-# {line.strip()}" for line in lines if line.strip())
            return f"{small}\n{answer}" if answer else small
        if self._mode == "status" and self._started is not None and not answer and not final:
            return f"-# thinking… {int(self._clock() - self._started)} s"
        return answer

    def _tick(self) -> None:
        if self._done or self._answering or self._wake is None:
            return
        self._wake()
        self._timer = asyncio.get_running_loop().call_later(self._tick_s, self._tick)
