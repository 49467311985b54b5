"""What Discord's answers say a channel's window holds, beyond what this process wrote (budget.py).

Right after a restart Discord still counts the previous run's writes in each channel for up to a
channel period: answering what it missed meanwhile, the new run wrote into channels Discord had
already counted 3 writes in, and got 429s. So for that long a channel Discord has not answered
about yet gets one write at a time, and each answer's count corrects the window.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from bot.discord.streaming.counted import Counted


class EarlierWrites:
    """Until `until` (clock), writes the budget never saw may still be counted by Discord."""

    def __init__(self, until: float = -math.inf) -> None:
        self.until = until
        self._heard: set[int] = set()  # channels whose count Discord told us, in that time

    def heard(self, channel_id: int, now: float) -> None:
        if now < self.until:
            self._heard.add(channel_id)

    def waits_for_answer(self, channel_id: int, window: Iterable[Counted]) -> bool:
        """Whether a write to a channel Discord has not told us about is still unanswered: the
        next waits for that answer, or for `until`."""
        if self.until == -math.inf or channel_id in self._heard:
            return False
        return any(c.answered_at is None for c in window)


def unseen_writes(
    window: list[Counted],
    now: float,
    limit: int | None,
    remaining: int,
    reset_after_s: float,
    period: float,
) -> list[Counted]:
    """Writes Discord counts that `window` does not hold, held until Discord's reset. Discord
    never counts more than the window holds (a request stays in it until a period after its
    answer) unless writes the budget never saw are in its count. `limit` is Discord's own
    (X-RateLimit-Limit), never the budget's: off, the budget's limits are endless."""
    if limit is None:
        return []
    earlier = []
    for _ in range(limit - remaining - len(window)):
        # Held as if answered a period before the reset: it ages out at the reset.
        earlier.append(Counted(granted_at=now, answered_at=now + reset_after_s - period))
    return earlier
