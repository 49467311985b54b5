"""A stream's events a network read at a time, with the text of one read merged into one delta.

The lean reader (sse.py) paces its reads, so a read carries the deltas of about a tenth of a
second; passing them on as one TextDelta saves the core and the renderer a step per delta
(issue 28). litellm's streams are read one chunk at a time, as before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from bot.backends.sse import EventStream
from bot.core.events import ReasoningDelta, TextDelta, TurnEvent


def batches_of(stream: Any) -> AsyncIterator[list[Any]]:
    """The stream's items per network read (the lean reader's), or one at a time (any other)."""
    if isinstance(stream, EventStream):
        return stream.batches()
    return _one_by_one(stream)


async def _one_by_one(stream: Any) -> AsyncIterator[list[Any]]:
    async for item in stream:
        yield [item]


def merged(events: Iterable[TurnEvent]) -> list[TurnEvent]:
    """Consecutive text deltas as one, and consecutive reasoning deltas as one; order kept."""
    out: list[TurnEvent] = []
    for event in events:
        last = out[-1] if out else None
        if type(event) is TextDelta and type(last) is TextDelta:
            out[-1] = TextDelta(text=last.text + event.text)
        elif type(event) is ReasoningDelta and type(last) is ReasoningDelta:
            out[-1] = ReasoningDelta(text=last.text + event.text)
        else:
            out.append(event)
    return out
