"""One request in the write budget's windows (budget.py), from its grant to a period after its
answer."""

from __future__ import annotations

# A request whose answer never comes (a hung connection) is taken as answered this long after it
# left, so it cannot hold a window shut for good.
UNANSWERED_S = 10.0


class Counted:
    """One request in the windows.

    Discord counts a request at some moment between when it leaves and when its answer is read,
    so a window that holds it until one period after the answer never lets a later request land
    in the same Discord window, whatever the latency or order of arrival: no safety margin to
    tune, and on a fast link the window frees as early as it can. A grant not yet seen leaving is
    held one period from the grant; if it leaves later it is held from then on.

    `held_from` is that moment (the answer, else the departure plus UNANSWERED_S, else the grant),
    kept as a plain attribute: the budget reads it for every request of a window many times a
    second, and a method call each time was a tenth of the bot's CPU in the bench's s4.
    """

    __slots__ = (
        "granted_at",
        "priority",
        "_left_at",
        "_answered_at",
        "held_from",
        "channel_id",
        "__weakref__",
    )

    def __init__(
        self,
        granted_at: float,
        priority: bool = False,  # a final or first part (see budget.Limits)
        left_at: float | None = None,
        answered_at: float | None = None,
    ) -> None:
        self.granted_at = granted_at
        self.priority = priority
        self._left_at = left_at
        self._answered_at = answered_at
        self.held_from = granted_at
        self.channel_id: int | None = None  # the channel window it is in, if any (budget.py)
        self._update()

    @property
    def left_at(self) -> float | None:
        return self._left_at

    @left_at.setter
    def left_at(self, value: float | None) -> None:
        self._left_at = value
        self._update()

    @property
    def answered_at(self) -> float | None:
        return self._answered_at

    @answered_at.setter
    def answered_at(self, value: float | None) -> None:
        self._answered_at = value
        self._update()

    def _update(self) -> None:
        if self._answered_at is not None:
            self.held_from = self._answered_at
        elif self._left_at is not None:
            self.held_from = self._left_at + UNANSWERED_S
        else:
            self.held_from = self.granted_at

    def expires(self, period: float) -> float:
        return self.held_from + period

    def __repr__(self) -> str:
        return (
            f"Counted(granted_at={self.granted_at}, priority={self.priority}, "
            f"left_at={self._left_at}, answered_at={self._answered_at})"
        )


def nth_expiry(window: list[Counted], period: float, n: int) -> float:
    """When the n-th request of the window (1-based, soonest first) ages out."""
    if n == 1:
        return min(c.held_from for c in window) + period
    return sorted([c.held_from for c in window])[n - 1] + period


def drop(window: list[Counted], counted: Counted) -> bool:
    """Take `counted` out of `window` (by identity); whether it was there."""
    before = len(window)
    window[:] = [c for c in window if c is not counted]
    return len(window) < before
