"""The bot's chores on its database: retention at start-up and daily, forgotten usage hourly."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

HOUR_S = 3600.0
HOURS_PER_RETENTION = 24


async def tidy(store: Any, retention_days: int | None) -> None:
    """Runs until cancelled. A forgotten user's last day of usage ages out within the hour
    after its day; storage.retention_days applies at start-up and then every 24 hours."""
    hours = 0
    while True:
        days = retention_days if hours % HOURS_PER_RETENTION == 0 else None
        try:
            expired = await store.expire(days)
        except Exception:
            log.exception("retention failed; it runs again in an hour")
        else:
            if days is not None:
                log.info(
                    "retention (%d days): deleted %d conversation(s) and %d approval(s); "
                    "folded %d usage row(s) into anonymous daily totals",
                    days,
                    expired.conversations,
                    expired.approvals,
                    expired.usage,
                )
        hours += 1
        await asyncio.sleep(HOUR_S)
