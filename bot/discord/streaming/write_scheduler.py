"""Drives the write budget (budget.py) on the event loop: `await scheduler.acquire(...)` waits
until a reply may make its next message write, and wakes itself when the budget says to."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator

from bot.discord.streaming.budget import Counted, Limits, Priority, WriteBudget

ROOM_RETRY_S = 0.05  # how soon a read looks again when the global window has no room
SPARE_SHARE = 0.5  # the part of the global window that decorations (reactions) may use

Clock = Callable[[], float]


class WriteScheduler:
    """Drives a WriteBudget on the event loop: `await scheduler.acquire(...)` waits its turn."""

    def __init__(self, limits: Limits | None = None, clock: Clock = time.monotonic) -> None:
        self.budget = WriteBudget(limits)
        self._clock = clock
        self._events: dict[int, asyncio.Event] = {}
        self._timer: asyncio.TimerHandle | None = None

    @contextlib.contextmanager
    def reply(self, channel_id: int, reply_id: int) -> Iterator[None]:
        """While a reply streams and has shown nothing yet, its first write is reserved for."""
        self.budget.expect_first(channel_id, reply_id)
        try:
            yield
        finally:
            self.budget.finish(channel_id, reply_id)
            self._pump()

    def shown(self, channel_id: int, reply_id: int) -> None:
        self.budget.shown(channel_id, reply_id)
        self._pump()

    async def acquire(self, channel_id: int, reply_id: int, priority: Priority) -> None:
        """Wait until this reply may make one message write in the channel."""
        ticket = self.budget.submit(channel_id, reply_id, priority)
        event = self._events[id(ticket)] = asyncio.Event()
        try:
            self._pump()
            await event.wait()
        except BaseException:
            self.budget.cancel(ticket)
            raise
        finally:
            self._events.pop(id(ticket), None)

    def unused(self, channel_id: int) -> None:
        """A write acquired for this channel will not be made: others may take its place."""
        self.budget.unused(channel_id)
        self._pump()

    def observe(self, channel_id: int, *, remaining: int, reset_after_s: float) -> None:
        self.budget.observe(
            channel_id, self._clock(), remaining=remaining, reset_after_s=reset_after_s
        )

    def rate_limited(self, channel_id: int | None, retry_after_s: float) -> None:
        self.budget.rate_limited(channel_id, self._clock(), retry_after_s)
        self._pump()

    def note_other_request(self, *, typing: bool = False) -> Counted:
        return self.budget.note_other_request(self._clock(), typing=typing)

    def may_type(self) -> bool:
        return self.budget.may_type(self._clock())

    def may_spare(self) -> bool:
        """Like may_type, for what only decorates (status reactions): only while the global
        window is at most half full, so a burst of new turns keeps its room for first parts
        and finals that come a moment later."""
        return self.budget.may_type(self._clock(), share=SPARE_SHARE)

    async def room_for_read(self, max_wait_s: float) -> bool:
        """Wait until one request outside the message buckets (a history read) fits the global
        window, behind the writes that wait; it is counted then, as typing is. False when no
        room came within `max_wait_s`: the read is not made."""
        give_up = self._clock() + max_wait_s
        # Polled: room comes back as the window's entries age out, which no event announces.
        while not self.may_type():  # noqa: ASYNC110
            if self._clock() >= give_up:
                return False
            await asyncio.sleep(ROOM_RETRY_S)
        return True

    def note_write(self, channel_id: int) -> Counted:
        return self.budget.note_write(channel_id, self._clock())

    def answered(self, counted: Counted) -> None:
        """A request's answer was read: its place in the windows frees one period from now."""
        self.budget.answered(counted, self._clock())
        self._pump()

    def _pump(self) -> None:
        now = self._clock()
        for ticket in self.budget.grant(now):
            event = self._events.get(id(ticket))
            if event is not None:
                event.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        wake = self.budget.next_wake(now)
        if wake is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(wake - now, 0.001), self._pump)
