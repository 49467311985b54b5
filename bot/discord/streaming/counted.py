"""One request in the write budget's windows (budget.py), from its grant to a period after its
answer."""

from __future__ import annotations

from dataclasses import dataclass

# A request whose answer never comes (a hung connection) is taken as answered this long after it
# left, so it cannot hold a window shut for good.
UNANSWERED_S = 10.0


@dataclass(eq=False)
class Counted:
    """One request in the windows.

    Discord counts a request at some moment between when it leaves and when its answer is read,
    so a window that holds it until one period after the answer never lets a later request land
    in the same Discord window, whatever the latency or order of arrival: no safety margin to
    tune, and on a fast link the window frees as early as it can. A grant not yet seen leaving is
    held one period from the grant; if it leaves later it is held from then on.
    """

    granted_at: float
    priority: bool = False  # a final or first part (see Limits)
    left_at: float | None = None
    answered_at: float | None = None

    def expires(self, period: float) -> float:
        if self.answered_at is not None:
            return self.answered_at + period
        if self.left_at is not None:
            return self.left_at + UNANSWERED_S + period
        return self.granted_at + period
