"""`limits.*` counted across every process of the bot in Redis: a user whose guilds live on two
shards gets one allowance, not two.

A running turn holds a lease that this process renews; a process that dies stops renewing, and
its leases expire after LEASE_S. Usage is added as each turn ends (a watcher on every turn) and
summed over the last 24 hours in 10-minute buckets.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable

from bot.core.events import SamplingUsed, TurnCompleted, TurnEvent, TurnFailed, Usage
from bot.core.limits import BUSY, too_fast
from bot.core.state import TurnRequest
from bot.core.turn_log import CostOf, price, turn_cost
from bot.ops.coordination.link import Link
from bot.ops.coordination.scripts import ADD_USAGE, ADMIT, RENEW, USAGE

LEASE_S = 10.0
RENEW_EVERY_S = 3.0


class SharedLimits:
    """The SharedCounts of core/limits.py, over Redis."""

    def __init__(self, link: Link, cost_of: CostOf | None, *, lease_s: float = LEASE_S) -> None:
        self._link = link
        self._lease_s = lease_s
        self.cost_of = cost_of
        self._admit = link.script(ADMIT)
        self._renew = link.script(RENEW)
        self._add = link.script(ADD_USAGE)
        self._usage = link.script(USAGE)
        self._leases: dict[str, str] = {}  # lease id -> its set's key, while the turn runs

    def _user(self, user_id: int, what: str) -> str:
        # Counters only, gone within a day; still no raw Discord id in the keys.
        hashed = hashlib.sha256(f"{self._link.prefix}:{user_id}".encode()).hexdigest()[:20]
        return self._link.key("user", hashed, what)

    async def admit(
        self, user_id: int, *, concurrent: int, per_minute: int
    ) -> str | Callable[[], None] | None:
        lease = secrets.token_hex(8)
        leases = self._user(user_id, "leases")
        keys = [leases, self._user(user_id, "recent")]
        args = [lease, concurrent, per_minute, int(self._lease_s * 1000)]
        answer = await self._link.call(lambda: self._admit(keys=keys, args=args))
        if answer is None:
            return None
        if int(answer[0]) == 1:
            return BUSY
        if int(answer[0]) == 2:
            return too_fast(int(answer[1]))
        self._leases[lease] = leases

        def release() -> None:
            if self._leases.pop(lease, None) is not None:
                self._link.later(lambda: self._link.redis.zrem(leases, lease))

        return release

    async def used_today(self, user_id: int) -> tuple[int, float] | None:
        key = self._user(user_id, "usage")
        answer = await self._link.call(lambda: self._usage(keys=[key]))
        return None if answer is None else (int(answer[0]), float(answer[1]))

    def add_usage(self, user_id: int, tokens: int, cost: float | None) -> None:
        key = self._user(user_id, "usage")
        args = [tokens, repr(cost or 0.0)]
        self._link.later(lambda: self._add(keys=[key], args=args))

    async def renew(self) -> None:
        """Keep the leases of running turns alive; a dead process's lapse after LEASE_S."""
        while True:
            await asyncio.sleep(RENEW_EVERY_S)
            if self._leases:
                await self._link.call(self._renew_all)

    async def _renew_all(self) -> object:
        keys, ids = list(self._leases.values()), list(self._leases)
        return await self._renew(keys=keys, args=[int(self._lease_s * 1000), *ids])

    def watcher(self, request: TurnRequest) -> UsageWatcher:
        return UsageWatcher(self, request.user_id)


class UsageWatcher:
    """Adds one turn's tokens and cost to the shared usage as the turn ends, as the store does."""

    def __init__(self, shared: SharedLimits, user_id: int) -> None:
        self._shared = shared
        self._user_id = user_id
        self._usage = Usage()
        self._costs: list[float | None] = []

    def see(self, event: TurnEvent) -> None:
        if isinstance(event, SamplingUsed | TurnCompleted | TurnFailed):
            self._usage = self._usage + event.usage
            self._costs.append(price(self._shared.cost_of, event.model, event.usage))

    def ended(self) -> None:
        tokens = self._usage.input_tokens + self._usage.output_tokens
        if tokens:
            self._shared.add_usage(self._user_id, tokens, turn_cost(self._costs))
