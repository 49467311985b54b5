"""Discord-style rate limiting (per-route buckets plus a global limit) with Discord's headers and 429s."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field

from .global_limit import GlobalLimit

# Routes without a documented limit get a roomy bucket so they still carry headers.
DEFAULT_BUCKET = (50, 1.0)
# The bot's own reactions (PUT and DELETE): their own per-channel bucket, about one per 0.25 s
# (DISCORD_FACTS.md); they count toward the global limit too.
REACTION_BUCKET = (1, 0.25)
VIA = "1.1 google"  # discord.py treats a 429 without Via as a Cloudflare ban and does not retry


@dataclass
class Window:
    """A fixed window that opens at its first request, like Discord's buckets appear to."""

    limit: int
    period: float
    count: int = 0
    reset_at: float = 0.0

    def refresh(self, now: float) -> None:
        if now >= self.reset_at:
            self.count, self.reset_at = 0, now + self.period

    def reset_after(self, now: float) -> float:
        return max(self.reset_at - now, 0.0)


@dataclass
class Decision:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: dict | None = None
    is_global: bool = False


def bucket_hash(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:32]


class RateLimiter:
    def __init__(
        self, *, enabled: bool, message_bucket: tuple[int, float], global_limit_per_s: int
    ) -> None:
        self.enabled = enabled
        self.message_bucket = message_bucket
        self.global_limit = GlobalLimit(global_limit_per_s)
        self.windows: dict[tuple[str, str], Window] = {}

    def check(
        self,
        route: str,
        major: str,
        *,
        exempt_global: bool = False,
        token: str = "",
        arrived_at: float | None = None,
    ) -> Decision:
        """`route` names the bucket (message create and edit share "messages"); `major` is the
        channel/guild/webhook id that splits one bucket into independent windows; `token` the
        bot token whose global window the request spends (every connection of it shares one).
        `arrived_at`: when the request reached the fake; Discord's global window counts arrivals,
        and a busy test process can get round to checking a request well after it came."""
        if not self.enabled:
            return Decision()
        now = time.monotonic()
        if not exempt_global:
            wait = self.global_limit.take(token, arrived_at if arrived_at is not None else now)
            if wait is not None:
                return self._refusal(wait, is_global=True, headers={})
        limit, period = {"messages": self.message_bucket, "reactions": REACTION_BUCKET}.get(
            route, DEFAULT_BUCKET
        )
        window = self.windows.setdefault((route, major), Window(limit, period))
        window.refresh(now)
        reset_after = window.reset_after(now)
        headers = {
            "X-RateLimit-Limit": str(window.limit),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket_hash(route),
        }
        if window.count >= window.limit:
            headers["X-RateLimit-Remaining"] = "0"
            headers["X-RateLimit-Scope"] = "user"
            return self._refusal(reset_after, is_global=False, headers=headers)
        window.count += 1
        headers["X-RateLimit-Remaining"] = str(window.limit - window.count)
        return Decision(headers=headers)

    @staticmethod
    def _refusal(retry_after: float, *, is_global: bool, headers: dict[str, str]) -> Decision:
        # A tiny floor so a client that sleeps exactly retry_after lands in the next window.
        retry_after = round(retry_after + 0.001, 3)
        headers = dict(headers)
        headers["Retry-After"] = str(math.ceil(retry_after))
        headers["Via"] = VIA
        if is_global:
            headers["X-RateLimit-Global"] = "true"
            headers["X-RateLimit-Scope"] = "global"
        body = {"message": "You are being rate limited.", "retry_after": retry_after}
        body["global"] = is_global
        return Decision(status=429, headers=headers, body=body, is_global=is_global)
