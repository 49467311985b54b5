"""Drives the write budget (budget.py) on the event loop: `await scheduler.acquire(...)` waits
until a reply may make its next message write, and wakes itself when the budget says to."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import weakref
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from typing import Protocol

from bot.discord.streaming.budget import Counted, Limits, Priority, WriteBudget

ROOM_RETRY_S = 0.05  # how soon a read looks again when the global window has no room
SPARE_SHARE = 0.5  # the part of the global window that decorations (reactions) may use

Clock = Callable[[], float]


class GlobalGate(Protocol):
    """Discord's global limit shared with other processes of the bot token (coordination)."""

    def limits(self) -> Limits:
        """What this process's own budget may plan now (all the window, or only its share
        while the shared one cannot be reached)."""
        ...

    async def admit(self, priority: Priority, waited_s: float) -> str | None:
        """Wait for a place in the shared window for one write this budget granted; its slot
        (None: the shared window could not be reached, this process's share decided)."""
        ...

    def answered(self, slot: str, *, sent: bool = True) -> None:
        """The write that took `slot` was answered (or never made): held a period from now."""
        ...

    def typing_room(self) -> bool:
        """Whether this process's part of the window kept for typing has a place now."""
        ...

    def typing_sent(self, counted: Counted) -> None:
        """Hold that place for the request `counted` follows, until a period after its answer."""
        ...

    def paused_until(self) -> float:
        """Until when (clock) nothing new may go to Discord, e.g. just after Redis went away."""
        ...

    def note_other(self) -> None: ...
    def hold(self, retry_after_s: float) -> None: ...


class WriteScheduler:
    """Drives a WriteBudget on the event loop: `await scheduler.acquire(...)` waits its turn."""

    def __init__(
        self,
        limits: Limits | None = None,
        clock: Clock = time.monotonic,
        gate: GlobalGate | None = None,
        *,
        after_restart: bool = False,
    ) -> None:
        """`after_restart`: the bot's previous run may have written into the channels in the
        last channel period, which Discord still counts (WriteBudget's earlier_writes_until)."""
        budget_limits = gate.limits() if gate is not None else (limits or Limits())
        earlier_until = clock() + budget_limits.channel_period_s if after_restart else -math.inf
        self.budget = WriteBudget(budget_limits, earlier_writes_until=earlier_until)
        self._gate = gate
        self._clock = clock
        self._events: dict[int, asyncio.Event] = {}
        self._timer: asyncio.TimerHandle | None = None
        # The shared window's slots of admitted writes, matched to writes oldest first as the
        # budget matches its grants, then to their answers.
        self._slots: dict[int, deque[str]] = defaultdict(deque)
        self._slot_of: weakref.WeakKeyDictionary[Counted, str] = weakref.WeakKeyDictionary()
        # Told how long each granted write waited (the metrics); must be quick.
        self.on_waited: list[Callable[[float], None]] = []

    def waiting(self) -> int:
        """Message writes waiting for the budget right now."""
        return len(self._events)

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
        asked = self._clock()
        try:
            self._pump()
            await event.wait()
            if self._gate is not None:
                slot = await self._gate.admit(priority, self._clock() - asked)
                if slot is not None:
                    self._slots[channel_id].append(slot)
            for waited in self.on_waited:
                waited(self._clock() - asked)
        except BaseException:
            self.budget.cancel(ticket)
            raise
        finally:
            self._events.pop(id(ticket), None)

    def unused(self, channel_id: int) -> None:
        """A write acquired for this channel will not be made: others may take its place."""
        self.budget.unused(channel_id)
        slot = self._take_slot(channel_id)
        if slot is not None and self._gate is not None:
            self._gate.answered(slot, sent=False)
        self._pump()

    def observe(
        self, channel_id: int, *, remaining: int, reset_after_s: float, limit: int | None = None
    ) -> None:
        self.budget.observe(
            channel_id,
            self._clock(),
            remaining=remaining,
            reset_after_s=reset_after_s,
            limit=limit,
        )

    def rate_limited(self, channel_id: int | None, retry_after_s: float) -> None:
        self.budget.rate_limited(channel_id, self._clock(), retry_after_s)
        if channel_id is None and self._gate is not None:
            self._gate.hold(retry_after_s)  # every process of the token holds, not just this one
        self._pump()

    def note_other_request(self, *, typing: bool = False) -> Counted:
        if self._gate is not None and not typing:
            self._gate.note_other()  # typing, reactions and reads were counted by may_type
        return self.budget.note_other_request(self._clock(), typing=typing)

    def may_type(self) -> bool:
        return self._may_go_outside(share=1.0)

    def may_spare(self) -> bool:
        """Like may_type, for what only decorates (status reactions): only while the global
        window is at most half full, so a burst of new turns keeps its room for first parts
        and finals that come a moment later."""
        return self._may_go_outside(share=SPARE_SHARE)

    def _may_go_outside(self, share: float) -> bool:
        """A request outside the message buckets (typing, a reaction, a history read): counted
        here, and with other processes in the part of the shared window kept for them."""
        self._refresh()  # Redis may have gone since the last write: keep to the share
        if self._gate is not None and not self._gate.typing_room():
            return False
        counted = self.budget.take_typing(self._clock(), share=share)
        if counted is None:
            return False
        if self._gate is not None:
            self._gate.typing_sent(counted)
        return True

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
        counted = self.budget.note_write(channel_id, self._clock())
        slot = self._take_slot(channel_id)
        if slot is not None:
            self._slot_of[counted] = slot
        elif self._gate is not None:
            self._gate.note_other()  # a write the gate did not admit (a notice, a prompt)
        return counted

    def _take_slot(self, channel_id: int) -> str | None:
        slots = self._slots.get(channel_id)
        if not slots:
            return None
        slot = slots.popleft()
        if not slots:
            del self._slots[channel_id]
        return slot

    def answered(self, counted: Counted) -> None:
        """A request's answer was read: its place in the windows frees one period from now."""
        self.budget.answered(counted, self._clock())
        slot = self._slot_of.pop(counted, None)
        if slot is not None and self._gate is not None:
            self._gate.answered(slot)
        self._pump()

    def _refresh(self) -> None:
        if self._gate is not None:
            self.budget.limits = self._gate.limits()
            # A pause holds grants, not writes already granted: a grant held back past its
            # second would go beside newer ones.
            now = self._clock()
            paused = self._gate.paused_until() - now
            if paused > 0:
                self.budget.rate_limited(None, now, paused)

    def _pump(self) -> None:
        now = self._clock()
        self._refresh()
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
