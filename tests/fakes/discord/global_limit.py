"""Discord's global limit: 50 requests a second per bot token, whichever connection they come on.

The limit belongs to the token, not to a connection or a process: two shard processes of one
bot share it. Kept apart from the per-route buckets (ratelimit.py), which split by channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenWindow:
    """A fixed one-second window that opens at its first request, like Discord's appear to."""

    count: int = 0
    reset_at: float = 0.0


@dataclass
class GlobalLimit:
    per_s: int
    period_s: float = 1.0
    windows: dict[str, TokenWindow] = field(default_factory=dict)

    def take(self, token: str, now: float) -> float | None:
        """Count one request of `token`; None if it may go, else seconds until the window resets."""
        window = self.windows.setdefault(token, TokenWindow())
        if now >= window.reset_at:
            window.count, window.reset_at = 0, now + self.period_s
        if window.count >= self.per_s:
            return max(window.reset_at - now, 0.0)
        window.count += 1
        return None
