"""A stream's events a network read at a time, with the text of one read merged into one delta.

When the bot is busy, one read of the lean reader (sse.py) carries several deltas; passing them
on as one TextDelta saves the core and the renderer a step per delta (issue 28). litellm's
streams are read one chunk at a time, as before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
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


def folded(items: Iterable[Any], fold: Callable[[Any], list[TurnEvent]]) -> Iterator[TurnEvent]:
    """The events of one read's items (`fold` turns an item into events), text merged; when an
    item fails (a `response.failed`, an error event), what came before it in the read is still
    shown first, as it was when items went one by one, and then the failure is raised."""
    events: list[TurnEvent] = []
    failure: Exception | None = None
    for item in items:
        try:
            events.extend(fold(item))
        except Exception as exc:
            failure = exc
            break
    yield from merged(events)
    if failure is not None:
        raise failure
