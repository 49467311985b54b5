"""One global Discord window in Redis for every process of the bot token (the write budget's gate).

Each process's budget still orders its own writes and keeps its channels' windows (a channel
lives on one shard); before a granted write leaves, it takes a place in the shared window, one
round trip when there is room. A global 429 seen by one process holds them all. With Redis away
the budget plans only this process's share of the limit, and the gate lets everything through.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import deque

from bot.discord.streaming.budget import Counted, Limits, Priority
from bot.discord.streaming.counted import UNANSWERED_S
from bot.discord.streaming.share import limits_for
from bot.ops.coordination.link import Link
from bot.ops.coordination.scripts import ANSWERED, HOLD, NOTE, TAKE

# A place is held from its grant until its answer is reported (then one second from the answer),
# or this long if no answer ever is (a process that died, a request never made and never given
# back): as long as the budget holds a request it saw leave (UNANSWERED_S) and a second more.
# Under load a request can leave seconds after its grant: CI's Redis trace showed answers
# reported 3.8 s after the grant, and at 3 s those places had lapsed and been taken by others.
HOLD_S = UNANSWERED_S + 1.0
# Answers are reported with the next call, or after this long by a call of their own.
REPORT_AFTER_S = 0.05
# Just back from an outage, a process keeps to its share a little longer: another process may
# not have noticed Redis is back yet and still plans its share alone (it looks every second).
GRACE_S = 3.0
# Redis just went away: no process knows what the others placed in the last second, so none
# adds to it until that second (and a write's way to Discord) has passed.
GONE_PAUSE_S = 1.5
# Discord's global window: a typing request's place frees this long after its answer.
TYPING_PERIOD_S = 1.0
# While Redis is away, how often a write waiting for one of this process's places looks again.
ALONE_POLL_S = 0.05


class SharedWindow:
    """The GlobalGate of write_scheduler.py, over Redis."""

    def __init__(self, link: Link, *, per_s: int, share_per_s: int) -> None:
        self._link = link
        self._whole = limits_for(per_s)
        self._share = limits_for(share_per_s)
        # Typing indicators cannot wait for Redis (they go now or never), so they get a fifth
        # of the window kept out of the shared one, split between the processes as the shards
        # are; message writes share the other four fifths.
        typing = per_s // 5
        self._writes = limits_for(per_s - typing)
        self._typing_per_s = max(typing * share_per_s // per_s, 1)
        self._typing: deque[Counted] = deque()  # oldest grant first
        self._answered: list[tuple[str, float]] = []
        self._take = link.script(TAKE)
        self._note = link.script(NOTE)
        self._hold = link.script(HOLD)
        self._report = link.script(ANSWERED)
        self._report_timer: asyncio.TimerHandle | None = None
        self._keys = [link.key("global"), link.key("global", "waiting"), link.key("global", "hold")]
        self._me = secrets.token_hex(6)
        self._ids = itertools.count()
        # While Redis is away, this process's share as places of its own: slot -> when it frees
        # (held like a shared place: until a second after its answer, HOLD_S if none comes; a
        # write can leave seconds after its grant on a loaded host, and Discord counts arrivals).
        self._alone: dict[str, float] = {}
        # ...and typing, reactions and reads sent meanwhile, held the same way: they count
        # toward Discord's 50/s as writes do (CI saw 29 creates and 22 typing in one second with
        # both processes alone, when typing was held only by this process's own budget).
        self._alone_typing: deque[Counted] = deque()

    def limits(self) -> Limits:
        if self._link.up and self._link.since_back() >= GRACE_S:
            return self._whole
        return self._share

    def answered(self, slot: str, *, sent: bool = True) -> None:
        """The request that took `slot` was answered (or, `sent=False`, never made): reported
        with the next call, or soon by itself (see scripts)."""
        if slot in self._alone:
            self._alone[slot] = time.monotonic() + (TYPING_PERIOD_S if sent else 0.0)
            return
        at = time.monotonic() - (0.0 if sent else 1.0)  # never made: free at once
        self._answered.append((slot, at))
        if self._report_timer is None:
            loop = asyncio.get_running_loop()
            self._report_timer = loop.call_later(REPORT_AFTER_S, self._report_now)

    def _report_now(self) -> None:
        self._report_timer = None
        if self._answered:
            args = self._since_answered()
            self._link.later(lambda: self._report(keys=[self._keys[0]], args=args))

    def _since_answered(self) -> list[str | int]:
        now, pairs = time.monotonic(), self._answered
        self._answered = []
        return [x for slot, at in pairs for x in (slot, int((now - at) * 1000))]

    async def admit(self, priority: Priority, waited_s: float) -> str | None:
        """Its slot in the shared window, or (Redis away) in this process's share."""
        first = priority is not Priority.EDIT
        slot = self._slot()
        age_ms = int(waited_s * 1000)
        hold_ms = int(HOLD_S * 1000)
        whole = self._writes
        try:
            while True:
                answer = await self._link.call(
                    lambda: self._take(
                        keys=self._keys,
                        args=[
                            slot,
                            int(first),
                            age_ms,
                            whole.global_per_s,
                            whole.global_edits_per_s,
                            hold_ms,
                            *self._since_answered(),
                        ],
                    )
                )
                if answer is None:
                    # Writes that were waiting here when Redis went away wait out the pause
                    # too (the budget's pause holds only new grants): the other processes'
                    # last second is still reaching Discord. Then Redis once more, since a
                    # stall or one lost connection is often over by then.
                    paused_s = self.paused_until() - time.monotonic()
                    if paused_s > 0:
                        await asyncio.sleep(paused_s)
                        continue
                    return await self._admit_alone()
                wait_ms = int(answer[0])
                if wait_ms <= 0:
                    return slot
                await asyncio.sleep(wait_ms / 1000)
        except asyncio.CancelledError:
            if first:  # leave the queue at once rather than hold others for its 30 s
                self._link.later(lambda: self._link.redis.zrem(self._keys[1], slot))
            raise

    def paused_until(self) -> float:
        """Just after Redis went away nothing new goes: what the other processes placed in the
        shared window's last second can still reach Discord beside this process's share."""
        return self._link.down_at + GONE_PAUSE_S

    async def _admit_alone(self) -> str:
        """A place in this process's share of the window, held as the shared ones are."""
        while True:
            now = time.monotonic()
            if self._alone_taken(now) < self._share.global_per_s:
                slot = f"alone:{self._slot()}"
                self._alone[slot] = now + HOLD_S
                return slot
            # Polled: an answer can free a place before its hold runs out (typing may hold them
            # all, with no write's hold to wait for).
            await asyncio.sleep(min([*(at - now for at in self._alone.values()), ALONE_POLL_S]))

    def _alone_taken(self, now: float) -> int:
        """Places of this process's share in use while Redis is away: writes and typing."""
        self._alone = {slot: until for slot, until in self._alone.items() if until > now}
        return len(self._alone) + _typing_held(self._alone_typing, now)

    def typing_room(self) -> bool:
        """Within this process's part of the typing fifth (Redis away: within its share, beside
        the writes that went alone)."""
        if not self._link.up:
            return self._alone_taken(time.monotonic()) < self._share.global_per_s
        # Held like every write, until a period after its answer: Discord counts a request
        # when it arrives, which on a busy loop is well after the grant.
        return _typing_held(self._typing, time.monotonic()) < self._typing_per_s

    def typing_sent(self, counted: Counted) -> None:
        if self._link.up:
            self._typing.append(counted)
        else:
            self._alone_typing.append(counted)

    def note_other(self) -> None:
        if not self._link.up:
            return
        slot = self._slot()
        self._link.later(lambda: self._noted(slot))

    def hold(self, retry_after_s: float) -> None:
        ms = max(int(retry_after_s * 1000), 1)
        self._link.later(lambda: self._hold(keys=[self._keys[2]], args=[ms]))

    async def _noted(self, slot: str) -> None:
        args = [slot, int(HOLD_S * 1000), *self._since_answered()]
        await self._note(keys=[self._keys[0]], args=args)

    def _slot(self) -> str:
        return f"{self._me}:{next(self._ids)}"


def _typing_held(sent: deque[Counted], now: float) -> int:
    """Typing requests (reactions, reads) still holding their place, oldest grant first: each
    until a period after its answer."""
    while sent and sent[0].expires(TYPING_PERIOD_S) <= now:
        sent.popleft()
    return len(sent)
