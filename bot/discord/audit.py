"""The audit channel: posts the audit trail's lines to `discord.audit_channel_id`, never pinging."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import discord

from bot.core.audit import AuditTrail, decision_line
from bot.core.events import TurnEvent
from bot.core.state import TurnRequest

log = logging.getLogger(__name__)

# A batch grows while under half a message, and no line is longer than that half: a batch
# therefore always fits Discord's 2000 characters.
HALF_MESSAGE = 950


class DiscordAudit:
    """Lines are queued and posted by one worker task, so a slow or failing audit channel never
    holds up a turn; lines queued together go out in one message."""

    def __init__(self, client: discord.Client, channel_id: int, secret: bytes) -> None:
        """`secret`: the install's (Store.install_secret), keying the argument digests."""
        self._client = client
        self._channel_id = channel_id
        self._trail = AuditTrail(secret)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._worker = asyncio.create_task(self._post_loop(), name="audit-channel")

    async def stop(self, grace_s: float = 5.0) -> None:
        if self._worker is None:
            return
        # Give queued lines a moment to go out: an audit line lost at shutdown is a gap.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace_s)
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._worker = None

    async def observe(self, request: TurnRequest, event: TurnEvent) -> None:
        line = self._trail.observe(request, event)
        if line is not None:
            self.post(line)

    def expired(self, record: Any) -> None:
        """An approval that nobody can decide any more, because the bot restarted."""
        self.post(
            decision_line(
                server=record.server,
                tool=record.tool,
                requester_id=record.requester_id,
                decision="expired",
                decided_by=None,
                args=self._trail.digest(record.arguments),
            )
        )

    def post(self, line: str) -> None:
        self._queue.put_nowait(line[:HALF_MESSAGE])

    async def _post_loop(self) -> None:
        channel = self._client.get_partial_messageable(self._channel_id)
        while True:
            lines = [await self._queue.get()]
            while not self._queue.empty() and sum(map(len, lines)) < HALF_MESSAGE:
                lines.append(self._queue.get_nowait())
            text = "\n".join(lines)
            try:
                await channel.send(text, allowed_mentions=discord.AllowedMentions.none())
            except discord.HTTPException as exc:
                log.warning("could not post %d audit line(s): %s", len(lines), exc)
            except Exception:
                log.exception("audit channel failed")
            finally:
                for _ in lines:
                    self._queue.task_done()
