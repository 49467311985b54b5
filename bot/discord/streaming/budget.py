"""Spends Discord's message-write budget: which reply's send or edit goes next, and when.

Discord allows about 5 message creates+edits per 5 s per channel and 50 requests per second per
bot. When several answers stream at once that budget is the only real limit, so it is spent in
the order that users notice: a final text and a reply's first words before an intermediate edit,
intermediate edits shared fairly between the replies of a channel (the one served longest ago
goes next), and the last token of a window kept back while a reply is still waiting for its first
words. Across channels, finals and first words go oldest first, so when the bot's global limit
binds neither kind starves the other; edits there only take what the recent rate of finals and
first words leaves over. The model is a sliding window per channel and one for the whole bot; a
request stays in them until one period after its answer was read (see `Counted`), and what
Discord says corrects them (`X-RateLimit-Remaining: 0` with its reset, or a 429's `retry_after`).

`WriteBudget` is pure bookkeeping over a clock passed in, so its decisions are unit-tested with a
fake clock; `WriteScheduler` (write_scheduler.py) drives it on the event loop.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import defaultdict, deque

from bot.discord.streaming import budget_terms as terms
from bot.discord.streaming.budget_terms import UNLIMITED, Limits, Priority, Ticket, across_channels
from bot.discord.streaming.counted import Counted, drop, nth_expiry
from bot.discord.streaming.discord_count import EarlierWrites, unseen_writes

__all__ = ["UNLIMITED", "Counted", "Limits", "Priority", "Ticket", "WriteBudget"]


EDIT = Priority.EDIT


class WriteBudget:
    """The budget's state and decisions; no I/O and no event loop."""

    def __init__(self, limits: Limits | None = None, *, earlier_writes_until: float = -math.inf):
        """`earlier_writes_until` (clock): until then Discord's channel windows may still hold
        writes of the bot's previous run (discord_count.py)."""
        self.limits = limits or Limits()
        self._earlier = EarlierWrites(earlier_writes_until)
        self._channel_window: dict[int, list[Counted]] = defaultdict(list)
        self._global_window: list[Counted] = []
        self._global_priority = 0  # the finals and first parts among them
        self._waiting_priority = 0  # finals and first parts submitted, not yet granted or cancelled
        self._blocked_until: dict[int, float] = {}
        self._global_blocked_until = 0.0
        self._waiting: dict[int, list[Ticket]] = defaultdict(list)
        self._last_served: dict[int, int] = {}
        self._service = itertools.count()
        # Grants whose request has not been seen leaving yet (see note_write), oldest first.
        self._unclaimed: dict[int, deque[Counted]] = defaultdict(deque)
        self._unclaimed_typing: deque[Counted] = deque()
        self._awaiting_first: dict[int, set[int]] = defaultdict(set)
        self._live: dict[int, set[int]] = defaultdict(set)  # shown, still streaming
        self._settled_until = 0.0  # nothing ages out of a window before this (see _expire)
        self._seq = itertools.count()
        # Per waiting channel, what _channel_wake said, until the channel's state changes.
        self._wake_of: dict[int, tuple[float, bool]] = {}
        self._wake_limits: tuple[int, float] | None = None

    # --- what the renderers say -------------------------------------------------------------

    def expect_first(self, channel_id: int, reply_id: int) -> None:
        """A reply in this channel will soon need a FIRST write: keep a token for it."""
        self._awaiting_first[channel_id].add(reply_id)
        self._changed(channel_id)

    def shown(self, channel_id: int, reply_id: int) -> None:
        """The reply showed its first words: it will need one write for its final. Only one
        announced by expect_first counts (one that never started never finishes)."""
        if reply_id not in self._awaiting_first.get(channel_id, ()):
            return
        terms.discard(self._awaiting_first, channel_id, reply_id)
        self._live[channel_id].add(reply_id)
        self._changed(channel_id)

    def finish(self, channel_id: int, reply_id: int) -> None:
        """The reply has ended: drop what was kept about it."""
        terms.discard(self._awaiting_first, channel_id, reply_id)
        terms.discard(self._live, channel_id, reply_id)
        self._last_served.pop(reply_id, None)
        self._changed(channel_id)

    def submit(self, channel_id: int, reply_id: int, priority: Priority) -> Ticket:
        ticket = Ticket(
            priority=priority,
            last_served=self._last_served.get(reply_id, -1),
            seq=next(self._seq),
            channel_id=channel_id,
            reply_id=reply_id,
        )
        heapq.heappush(self._waiting[channel_id], ticket)
        self._changed(channel_id)
        if priority is not Priority.EDIT:
            self._waiting_priority += 1
        return ticket

    def cancel(self, ticket: Ticket) -> None:
        if not ticket.cancelled and not ticket.granted and ticket.priority is not Priority.EDIT:
            self._waiting_priority -= 1
        ticket.cancelled = True
        self._changed(ticket.channel_id)

    def unused(self, channel_id: int) -> None:
        """A granted write was not needed (nothing had changed): its place is given back now,
        not a period later. Writes match grants oldest first (note_write), so the oldest grant
        not yet seen leaving goes: the place that would have freed soonest."""
        unclaimed = self._unclaimed.get(channel_id)
        if not unclaimed:
            return
        counted = unclaimed.popleft()
        if not unclaimed:
            del self._unclaimed[channel_id]
        self._changed(channel_id)
        window = self._channel_window.get(channel_id, [])
        if drop(window, counted) and not window:
            del self._channel_window[channel_id]
        if drop(self._global_window, counted) and counted.priority:
            self._global_priority -= 1

    # --- what Discord says ------------------------------------------------------------------

    def observe(
        self,
        channel_id: int,
        now: float,
        *,
        remaining: int,
        reset_after_s: float,
        limit: int | None = None,
    ) -> None:
        """Response headers of a message write: Discord's own count wins over the model. Its
        reset was reckoned before the answer left Discord, so from `now` it is never early.
        Writes it counts that the window does not hold are held until its reset (`limit`:
        X-RateLimit-Limit; see discord_count.py)."""
        self._earlier.heard(channel_id, now)
        window = self._channel_window[channel_id]
        period = self.limits.channel_period_s
        for earlier in unseen_writes(window, now, limit, remaining, reset_after_s, period):
            earlier.channel_id = channel_id
            window.append(earlier)
            self._may_age_out(earlier)
        if not window:
            del self._channel_window[channel_id]
        self._changed(channel_id)
        if remaining <= 0:
            until = now + reset_after_s
            self._blocked_until[channel_id] = max(self._blocked_until.get(channel_id, 0.0), until)
            self._changed(channel_id)

    def rate_limited(self, channel_id: int | None, now: float, retry_after_s: float) -> None:
        """A 429: nothing more goes to that channel (or anywhere, if global) until it lifts."""
        until = now + retry_after_s
        if channel_id is None:
            self._global_blocked_until = max(self._global_blocked_until, until)
        else:
            self._blocked_until[channel_id] = max(self._blocked_until.get(channel_id, 0.0), until)
            self._changed(channel_id)

    def may_type(self, now: float, *, share: float = 1.0) -> bool:
        return self.take_typing(now, share=share) is not None

    def take_typing(self, now: float, *, share: float = 1.0) -> Counted | None:
        """A place in the global window now, using at most `share` of it, for a typing indicator
        or another request outside the message buckets (None: no room); counted at once."""
        self._expire(now)
        if now < self._global_blocked_until:
            return None
        if len(self._global_window) + self._waiting_priority >= self.limits.global_per_s * share:
            return None
        # As if it left now: held until a period after its answer however long discord.py
        # keeps it (an aged-out grant would land in a full window); never sent: UNANSWERED_S.
        self._global_window.append(typing := Counted(granted_at=now, left_at=now))
        self._may_age_out(typing)
        self._unclaimed_typing.append(typing)
        return typing

    def note_other_request(self, now: float, *, typing: bool = False) -> Counted:
        """A request outside the budget (interactions, reads) still counts toward 50/s; a typing
        request that may_type counted already is not counted twice."""
        if typing and self._unclaimed_typing:
            return self._leaves(self._unclaimed_typing.popleft(), now, channel_id=None)
        return self._leaves(Counted(granted_at=now), now, channel_id=None)

    def note_write(self, channel_id: int, now: float) -> Counted:
        """A message write is leaving for Discord. One the budget granted was counted then; one
        it did not (a notice, a prompt sent directly) still spends the channel's window."""
        unclaimed = self._unclaimed.get(channel_id)
        if unclaimed:
            counted = unclaimed.popleft()
            if not unclaimed:
                del self._unclaimed[channel_id]
            return self._leaves(counted, now, channel_id=channel_id)
        return self._leaves(Counted(granted_at=now), now, channel_id=channel_id)

    def answered(self, counted: Counted, now: float) -> None:
        """Discord's answer to a request (any status, or a failed connection) was read."""
        if counted.answered_at is None:
            counted.answered_at = now
            self._may_age_out(counted)
            self._changed(counted.channel_id)

    # --- decisions --------------------------------------------------------------------------

    def grant(self, now: float) -> list[Ticket]:
        """Every waiting write that may go now, best first across all channels (when the global
        limit is what binds, a final in one channel still goes before an edit in another)."""
        granted: list[Ticket] = []
        self._expire(now)
        if not self._global_free(now):
            return granted
        # Each channel's head, if its own window lets it go; a grant changes only its own
        # channel's, while the bot's window is looked at again for every grant.
        ready = {c: t for c in list(self._waiting) if (t := self._ready(c, now)) is not None}
        while ready and self._global_free(now):
            fits = [t for t in ready.values() if self._global_room(t.priority is EDIT)]
            if not fits:
                break
            ticket = min(fits, key=across_channels)
            channel_id = ticket.channel_id
            heapq.heappop(self._waiting[channel_id])
            if not self._waiting[channel_id]:
                del self._waiting[channel_id]
            ticket.granted = True
            counted = Counted(granted_at=now, priority=ticket.priority is not EDIT)
            counted.channel_id = channel_id
            self._changed(channel_id)
            self._channel_window[channel_id].append(counted)
            self._unclaimed[channel_id].append(counted)
            self._global_window.append(counted)
            if counted.priority:
                self._global_priority += 1
                self._waiting_priority -= 1
            self._last_served[ticket.reply_id] = next(self._service)
            granted.append(ticket)
            self._may_age_out(counted)
            after = self._ready(channel_id, now) if channel_id in self._waiting else None
            if after is None:
                del ready[channel_id]
            else:
                ready[channel_id] = after
        return granted

    def next_wake(self, now: float) -> float | None:
        """When a waiting write could next be granted (None: nothing waits). A request still in
        flight frees its place only once answered, and `answered` is followed by a new look."""
        if self._wake_limits != (self.limits.channel_writes, self.limits.channel_period_s):
            self._wake_of.clear()
            self._wake_limits = (self.limits.channel_writes, self.limits.channel_period_s)
        soonest: dict[bool, float] = {}  # by kind (an edit or not): the bot's window is per kind
        for channel_id in list(self._waiting):
            if (wake := self._wake_of.get(channel_id)) is None:
                if (wake := self._channel_wake(channel_id)) is None:
                    continue
                self._wake_of[channel_id] = wake
            at, edit = wake
            soonest[edit] = min(at, soonest.get(edit, at))
        if not soonest:
            return None
        # ...and the whole bot's window must have room too.
        wakes = [max(at, self._global_room_at(edit, now)) for edit, at in soonest.items()]
        return max(min(wakes), self._global_blocked_until, now)

    def _channel_wake(self, channel_id: int) -> tuple[float, bool] | None:
        """When the channel's own window and Discord's word let its head go (-inf: now), and
        whether that head is an edit. It changes only with the channel's own state, so it is
        kept until then (_changed); requests aging out of the window do not move it."""
        head = self._head(channel_id)
        if head is None:
            return None
        window = self._channel_window.get(channel_id, [])
        # Enough requests must age out to leave `needed` writes free.
        expire = len(window) - self.limits.channel_writes + self._needed(head)
        at = nth_expiry(window, self.limits.channel_period_s, expire) if expire > 0 else -math.inf
        if self._earlier.waits_for_answer(channel_id, window):
            at = max(at, self._earlier.until)  # or the answer, which looks again
        return max(at, self._blocked_until.get(channel_id, -math.inf)), head.priority is EDIT

    def _changed(self, channel_id: int | None) -> None:
        if channel_id is not None:
            self._wake_of.pop(channel_id, None)

    # --- internals --------------------------------------------------------------------------

    def _leaves(self, counted: Counted, now: float, *, channel_id: int | None) -> Counted:
        """A request is being written: in its windows until answered (again, if aged out)."""
        counted.left_at = now
        self._may_age_out(counted)
        windows = [self._global_window]
        if channel_id is not None:
            windows.append(self._channel_window[channel_id])
            counted.channel_id = channel_id
            self._changed(channel_id)
        for window in windows:
            if not any(c is counted for c in window):
                window.append(counted)
                if counted.priority and window is self._global_window:
                    self._global_priority += 1
        return counted

    def _may_age_out(self, counted: Counted) -> None:
        """A request was added to the windows or its hold changed: it may age out sooner than
        anything _expire saw (the channel's period or the bot's, whichever is shorter)."""
        period = min(self.limits.channel_period_s, self.limits.global_period_s)
        self._settled_until = min(self._settled_until, counted.held_from + period)

    def _expire(self, now: float) -> None:
        # Asked many times a second (typing loops look every 50 ms, every answer pumps): skipped
        # until something can have aged out; each change to a request's hold brings that moment
        # forward (_may_age_out).
        if now < self._settled_until:
            return
        soonest = math.inf
        period = self.limits.channel_period_s
        for channel_id, window in list(self._channel_window.items()):
            window[:] = [c for c in window if c.held_from + period > now]
            if not window:
                del self._channel_window[channel_id]
                continue
            soonest = min(soonest, min(c.held_from for c in window) + period)
        for channel_id, unclaimed in list(self._unclaimed.items()):
            while unclaimed and unclaimed[0].held_from + period <= now:
                unclaimed.popleft()  # granted but never sent: nothing left to match
            if not unclaimed:
                del self._unclaimed[channel_id]
        period = self.limits.global_period_s
        while self._unclaimed_typing and self._unclaimed_typing[0].held_from + period <= now:
            self._unclaimed_typing.popleft()
        self._global_window[:] = [c for c in self._global_window if c.held_from + period > now]
        if self._global_window:
            soonest = min(soonest, min(c.held_from for c in self._global_window) + period)
        self._global_priority = sum(c.priority for c in self._global_window)
        for channel_id, until in list(self._blocked_until.items()):
            if until <= now:
                del self._blocked_until[channel_id]
            else:
                soonest = min(soonest, until)
        self._settled_until = soonest

    def _global_free(self, now: float) -> bool:
        return now >= self._global_blocked_until and (
            len(self._global_window) < self.limits.global_per_s
        )

    def _global_room(self, edit: bool) -> bool:
        """Whether the bot's window has room now for an edit, or another write (its channel's
        aside)."""
        if len(self._global_window) >= self.limits.global_per_s:
            return False
        return not edit or self._global_edits() < self._edit_allowance()

    def _global_edits(self) -> int:
        """Requests in the window that were not finals or first parts (edits, typing, reads)."""
        return len(self._global_window) - self._global_priority

    def _edit_allowance(self) -> int:
        """What edits may take of the bot's window: what the finals and first parts of the last
        second (the best guess of the next one's) and those waiting now leave over."""
        return self.limits.global_edits_per_s - self._global_priority - self._waiting_priority

    def _global_room_at(self, edit: bool, now: float) -> float:
        """When the bot's window may next have room for an edit, or another write."""
        if self._global_room(edit):
            return now
        period = self.limits.global_period_s
        over = len(self._global_window) - self.limits.global_per_s
        if over >= 0:
            return nth_expiry(self._global_window, period, over + 1)
        # An edit held back for finals and first parts: each request that ages out changes the
        # count, so look again then (or, with none in the window, a window later).
        if not self._global_window:
            return now + period
        return max(nth_expiry(self._global_window, period, 1), now + 0.001)

    def _head(self, channel_id: int) -> Ticket | None:
        heap = self._waiting[channel_id]
        while heap and heap[0].cancelled:
            heapq.heappop(heap)
        if not heap:
            del self._waiting[channel_id]
            return None
        return heap[0]

    def _needed(self, ticket: Ticket) -> int:
        channel, limit = ticket.channel_id, self.limits.channel_writes
        live, waiting = self._live.get(channel, ()), self._awaiting_first.get(channel, ())
        return terms.free_writes_needed(ticket, live, waiting, limit)

    def _ready(self, channel_id: int, now: float) -> Ticket | None:
        head = self._head(channel_id)
        if head is None or now < self._blocked_until.get(channel_id, 0.0):
            return None
        window = self._channel_window.get(channel_id, ())
        if now < self._earlier.until and self._earlier.waits_for_answer(channel_id, window):
            return None
        used = len(window)
        return head if self.limits.channel_writes - used >= self._needed(head) else None
