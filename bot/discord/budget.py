"""Spends Discord's message-write budget: which reply's send or edit goes next, and when.

Discord allows about 5 message creates+edits per 5 s per channel and 50 requests per second per
bot. When several answers stream at once that budget is the only real limit, so it is spent in
the order that users notice: a final text and a reply's first words before an intermediate edit,
intermediate edits shared fairly between the replies of a channel (the one served longest ago
goes next), and the last token of a window kept back while a reply is still waiting for its first
words. Across channels, finals and first words go oldest first, so when the bot's global limit
binds neither kind starves the other; edits there only take what the recent rate of finals and
first words leaves over. The model is a sliding window per channel and one for the whole bot,
stamped when a request really leaves, corrected by what Discord says (`X-RateLimit-Remaining: 0`
with its reset, or a 429's `retry_after`).

`WriteBudget` is pure bookkeeping over a clock passed in, so its decisions are unit-tested with a
fake clock; `WriteScheduler` (write_scheduler.py) drives it on the event loop.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
from collections import defaultdict, deque
from dataclasses import dataclass, field
from enum import IntEnum


class Priority(IntEnum):
    """Lower goes first."""

    FINAL = 0  # the last text of a reply: nothing after it will fix a stale message
    FIRST = 1  # a new message: the user's first sight of (more of) an answer
    EDIT = 2  # an intermediate edit: only refreshes text that is already visible


@dataclass(frozen=True)
class Limits:
    channel_writes: int = 5
    channel_period_s: float = 5.0
    # Discord's global limit is 50/s for every request the bot makes; every one of them passes
    # discord.py's session and is counted (interaction callbacks too, which Discord exempts).
    # Finals and first parts may fill the window up to `global_per_s`; intermediate edits only up to `global_edits_per_s` minus the finals and
    # first parts of the last second (the best guess of the next second's), so a steady stream
    # of new answers is never slowed by refreshes; typing indicators take what finals and first
    # parts waiting right now do not need.
    global_per_s: int = 50
    global_edits_per_s: int = 40
    # Windows are stamped when a request leaves, but it reaches Discord a little later and not
    # always in order: a window is treated as this much longer than Discord's so two never land
    # in one. The bot's window gets more: its 50 requests a second are used to the last one when
    # many answers start at once (measured: 0.05 s let a few through 0.01-0.06 s early), and a
    # global 429 holds every write, where a channel's holds one channel.
    safety_s: float = 0.05
    global_safety_s: float = 0.1


# No budget at all: every write goes at once (the bench's baseline, `discord.write_budget: false`).
UNLIMITED = Limits(
    channel_writes=10**9,
    global_per_s=10**9,
    global_edits_per_s=10**9,
    safety_s=0.0,
    global_safety_s=0.0,
)


@dataclass(order=True)
class Ticket:
    """One write waiting for the budget."""

    priority: Priority
    last_served: int  # this reply's place in the order of service: served longest ago goes first
    seq: int
    channel_id: int = field(compare=False)
    reply_id: int = field(compare=False)
    granted: bool = field(default=False, compare=False)
    cancelled: bool = field(default=False, compare=False)


class WriteBudget:
    """The budget's state and decisions; no I/O and no event loop."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._channel_grants: dict[int, deque[float]] = defaultdict(deque)
        self._global_grants: deque[float] = deque()
        self._global_priority: deque[float] = deque()  # the finals and first parts among them
        self._waiting_priority = 0  # finals and first parts submitted, not yet granted or cancelled
        self._blocked_until: dict[int, float] = {}
        self._global_blocked_until = 0.0
        self._waiting: dict[int, list[Ticket]] = defaultdict(list)
        self._last_served: dict[int, int] = {}
        self._service = itertools.count()
        self._typing_granted = 0  # typing requests counted by may_type, not yet seen leaving
        # Grants whose request has not been seen leaving yet (see note_write).
        self._unclaimed: dict[int, deque[tuple[float, bool]]] = defaultdict(deque)
        self._awaiting_first: dict[int, set[int]] = defaultdict(set)
        self._live: dict[int, set[int]] = defaultdict(set)  # shown, still streaming
        self._seq = itertools.count()

    # --- what the renderers say -------------------------------------------------------------

    def expect_first(self, channel_id: int, reply_id: int) -> None:
        """A reply in this channel will soon need a FIRST write: keep a token for it."""
        self._awaiting_first[channel_id].add(reply_id)

    def shown(self, channel_id: int, reply_id: int) -> None:
        """The reply showed its first words: from now on it will need one write for its final.
        Only a reply announced by expect_first counts, so one that never started (and so will
        never `finish`) cannot hold a reserve forever."""
        if reply_id not in self._awaiting_first.get(channel_id, ()):
            return
        _discard(self._awaiting_first, channel_id, reply_id)
        self._live[channel_id].add(reply_id)

    def finish(self, channel_id: int, reply_id: int) -> None:
        """The reply has ended: drop what was kept about it."""
        _discard(self._awaiting_first, channel_id, reply_id)
        _discard(self._live, channel_id, reply_id)
        self._last_served.pop(reply_id, None)

    def submit(self, channel_id: int, reply_id: int, priority: Priority) -> Ticket:
        ticket = Ticket(
            priority=priority,
            last_served=self._last_served.get(reply_id, -1),
            seq=next(self._seq),
            channel_id=channel_id,
            reply_id=reply_id,
        )
        heapq.heappush(self._waiting[channel_id], ticket)
        if priority is not Priority.EDIT:
            self._waiting_priority += 1
        return ticket

    def cancel(self, ticket: Ticket) -> None:
        if not ticket.cancelled and not ticket.granted and ticket.priority is not Priority.EDIT:
            self._waiting_priority -= 1
        ticket.cancelled = True

    # --- what Discord says ------------------------------------------------------------------

    def observe(self, channel_id: int, now: float, *, remaining: int, reset_after_s: float) -> None:
        """Response headers of a message write: Discord's own count wins over the model."""
        if remaining <= 0:
            until = now + reset_after_s + self.limits.safety_s
            self._blocked_until[channel_id] = max(self._blocked_until.get(channel_id, 0.0), until)

    def rate_limited(self, channel_id: int | None, now: float, retry_after_s: float) -> None:
        """A 429: nothing more goes to that channel (or anywhere, if global) until it lifts."""
        if channel_id is None:
            until = now + retry_after_s + self.limits.global_safety_s
            self._global_blocked_until = max(self._global_blocked_until, until)
        else:
            until = now + retry_after_s + self.limits.safety_s
            self._blocked_until[channel_id] = max(self._blocked_until.get(channel_id, 0.0), until)

    def may_type(self, now: float) -> bool:
        """Whether a typing indicator fits the global window now; if so it is counted."""
        self._expire(now)
        if now < self._global_blocked_until:
            return False
        if len(self._global_grants) + self._waiting_priority >= self.limits.global_per_s:
            return False
        self._global_grants.append(now)
        self._typing_granted += 1
        return True

    def note_other_request(self, now: float, *, typing: bool = False) -> None:
        """A request outside the budget (interactions, reads) still counts toward 50/s; a typing
        request that may_type counted already is not counted twice."""
        if typing and self._typing_granted:
            self._typing_granted -= 1
            return
        self._global_grants.append(now)

    def note_write(self, channel_id: int, now: float) -> None:
        """A message write is leaving for Discord. One the budget granted was counted then; one
        it did not (a notice, a prompt sent directly) still spends the channel's window."""
        unclaimed = self._unclaimed.get(channel_id)
        if unclaimed:
            # Re-stamped to now: a grant may leave a little late (the event loop was busy), and
            # Discord counts it from when it arrives, not from when it was granted.
            granted_at, priority = unclaimed.popleft()
            _restamp(self._channel_grants[channel_id], granted_at, now)
            _restamp(self._global_grants, granted_at, now)
            if priority:
                _restamp(self._global_priority, granted_at, now)
            return
        self._channel_grants[channel_id].append(now)
        self._global_grants.append(now)

    # --- decisions --------------------------------------------------------------------------

    def grant(self, now: float) -> list[Ticket]:
        """Every waiting write that may go now, best first across all channels (when the global
        limit is what binds, a final in one channel still goes before an edit in another)."""
        granted: list[Ticket] = []
        self._expire(now)
        while self._global_free(now):
            ready = [
                t
                for c in list(self._waiting)
                if (t := self._ready(c, now)) is not None and self._global_room(t)
            ]
            if not ready:
                break
            ticket = min(ready, key=_across_channels)
            heapq.heappop(self._waiting[ticket.channel_id])
            if not self._waiting[ticket.channel_id]:
                del self._waiting[ticket.channel_id]
            ticket.granted = True
            self._channel_grants[ticket.channel_id].append(now)
            self._unclaimed[ticket.channel_id].append((now, ticket.priority is not Priority.EDIT))
            self._global_grants.append(now)
            if ticket.priority is not Priority.EDIT:
                self._global_priority.append(now)
                self._waiting_priority -= 1
            self._last_served[ticket.reply_id] = next(self._service)
            granted.append(ticket)
        return granted

    def next_wake(self, now: float) -> float | None:
        """When a waiting write could next be granted (None: nothing waits)."""
        wakes = []
        window = self.limits.channel_period_s + self.limits.safety_s
        for channel_id in list(self._waiting):
            head = self._head(channel_id)
            if head is None:
                continue
            grants = self._channel_grants.get(channel_id, ())
            # Enough old grants must age out to leave `needed` writes free.
            expire = len(grants) - self.limits.channel_writes + self._needed(head)
            at = grants[expire - 1] + window if expire > 0 else now
            # ...and the whole bot's window must have room too.
            at = max(at, self._global_room_at(head, now))
            wakes.append(max(at, self._blocked_until.get(channel_id, now)))
        if not wakes:
            return None
        return max(min(wakes), self._global_blocked_until, now)

    # --- internals --------------------------------------------------------------------------

    def _expire(self, now: float) -> None:
        window = self.limits.channel_period_s + self.limits.safety_s
        for channel_id, grants in list(self._channel_grants.items()):
            while grants and grants[0] + window <= now:
                grants.popleft()
            if not grants:
                del self._channel_grants[channel_id]
        for channel_id, unclaimed in list(self._unclaimed.items()):
            while unclaimed and unclaimed[0][0] + window <= now:
                unclaimed.popleft()  # granted but never sent: nothing left to match
            if not unclaimed:
                del self._unclaimed[channel_id]
        for grants in (self._global_grants, self._global_priority):
            while grants and grants[0] + 1.0 + self.limits.global_safety_s <= now:
                grants.popleft()
        for channel_id, until in list(self._blocked_until.items()):
            if until <= now:
                del self._blocked_until[channel_id]

    def _global_free(self, now: float) -> bool:
        return now >= self._global_blocked_until and (
            len(self._global_grants) < self.limits.global_per_s
        )

    def _global_room(self, ticket: Ticket) -> bool:
        """Whether the bot's window has room for this ticket now (its channel's aside)."""
        if len(self._global_grants) >= self.limits.global_per_s:
            return False
        return ticket.priority is not Priority.EDIT or self._global_edits() < self._edit_allowance()

    def _global_edits(self) -> int:
        """Requests in the window that were not finals or first parts (edits, typing, reads)."""
        return len(self._global_grants) - len(self._global_priority)

    def _edit_allowance(self) -> int:
        """What edits may take of the bot's window: what the finals and first parts of the last
        second (the best guess of the next one's) and those waiting now leave over."""
        return self.limits.global_edits_per_s - len(self._global_priority) - self._waiting_priority

    def _global_room_at(self, ticket: Ticket, now: float) -> float:
        """When the bot's window may next have room for this ticket."""
        if self._global_room(ticket):
            return now
        window = 1.0 + self.limits.global_safety_s
        over = len(self._global_grants) - self.limits.global_per_s
        if over >= 0:
            return self._global_grants[over] + window
        # An edit held back for finals and first parts: each grant that ages out changes the
        # count, so look again then (or, with none in the window, a window later).
        oldest = self._global_grants[0] if self._global_grants else now
        return max(oldest + window, now + 0.001)

    def _head(self, channel_id: int) -> Ticket | None:
        heap = self._waiting[channel_id]
        while heap and heap[0].cancelled:
            heapq.heappop(heap)
        if not heap:
            del self._waiting[channel_id]
            return None
        return heap[0]

    def _needed(self, ticket: Ticket) -> int:
        """Free writes the window must hold for this ticket to go. An intermediate edit leaves
        one for every final that will come in this channel (its own and those of the other
        replies showing there) and one for a reply still waiting to show its first words: an
        edit only refreshes text, a final or a first part is what a user waits for."""
        if ticket.priority is not Priority.EDIT:
            return 1
        channel = ticket.channel_id
        finals = len(self._live.get(channel, set()) | {ticket.reply_id})
        first = bool(self._awaiting_first.get(channel, set()) - {ticket.reply_id})
        return min(1 + finals + first, self.limits.channel_writes)

    def _ready(self, channel_id: int, now: float) -> Ticket | None:
        head = self._head(channel_id)
        if head is None or now < self._blocked_until.get(channel_id, 0.0):
            return None
        used = len(self._channel_grants.get(channel_id, ()))
        return head if self.limits.channel_writes - used >= self._needed(head) else None


def _across_channels(ticket: Ticket) -> tuple[int, int, int]:
    """Which channel's head goes first when the bot's own window is what binds: finals and first
    parts before edits, and among them the oldest (strict finals-first would starve new answers
    for as long as old ones keep finishing); edits by the same fairness as within a channel."""
    if ticket.priority is Priority.EDIT:
        return (1, ticket.last_served, ticket.seq)
    return (0, ticket.seq, 0)


def _restamp(grants: deque[float], old: float, new: float) -> None:
    """Move one grant from `old` to `new` (no earlier than any grant held), keeping order. One
    that aged out of the window meanwhile is counted anew: it reaches Discord now."""
    with contextlib.suppress(ValueError):
        grants.remove(old)
    grants.append(new)


def _discard(sets: dict[int, set[int]], channel_id: int, reply_id: int) -> None:
    members = sets.get(channel_id)
    if members is not None:
        members.discard(reply_id)
        if not members:
            del sets[channel_id]
