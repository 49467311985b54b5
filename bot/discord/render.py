"""StreamRenderer: shows a turn in Discord by sending and editing replies at a tolerable rate."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Protocol

import discord

from bot.core.events import ApprovalRequested, ApprovalResolved, TextDelta, TurnEvent
from bot.discord.pacing import ChannelPacer
from bot.discord.split import split_message
from bot.discord.transcript import STREAMING_INDICATOR, Transcript

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
TYPING_REFRESH_S = 8.0  # Discord shows "typing" for about 10 s per request


class ApprovalUI(Protocol):
    async def send_prompt(
        self, event: ApprovalRequested, anchor: discord.Message
    ) -> discord.Message: ...
    async def show_resolution(self, event: ApprovalResolved) -> None: ...


class StreamRenderer:
    """Feed it a turn's events; it keeps at most one Discord request in flight and always shows
    the newest text. Used as `async with StreamRenderer(...) as r: await r.handle(event)`."""

    def __init__(
        self,
        source: discord.Message,
        *,
        edit_interval_s: float,
        approvals: ApprovalUI,
        pacer: ChannelPacer,
        channel: discord.Thread | None = None,
    ) -> None:
        self._source = source
        # Where the first part goes: a reply to `source`, or (reply_in_thread) a new thread.
        self._channel = channel
        self._interval = edit_interval_s
        self._approvals = approvals
        self._pacer = pacer
        self._channel_id = (channel or source.channel).id
        self._transcript = Transcript()
        # After an approval prompt the answer continues below it, in a new segment of messages.
        self._segments: list[_Segment] = [_Segment(start=0, anchor=None)]
        self._dirty = asyncio.Event()
        self._sync_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._typing: asyncio.Task[None] | None = None

    def _sent_any(self) -> bool:
        return bool(self._segments[0].messages)

    async def __aenter__(self) -> StreamRenderer:
        self._typing = asyncio.create_task(self._keep_typing())
        self._flusher = asyncio.create_task(self._flush_loop())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.finish()

    async def handle(self, event: TurnEvent) -> None:
        changed = self._transcript.apply(event)
        if isinstance(event, TextDelta):
            if changed:
                self._dirty.set()  # the flusher picks it up at its own pace
            return
        if isinstance(event, ApprovalRequested):
            # The user must see what led to the question before the buttons appear below it.
            await self._sync(final=False)
            last = self._segments[-1].messages or self._segments[0].messages
            prompt = await self._approvals.send_prompt(event, last[-1] if last else self._source)
            self._segments.append(_Segment(start=self._transcript.seal(), anchor=prompt))
        elif isinstance(event, ApprovalResolved):
            await self._approvals.show_resolution(event)
        if changed:
            self._dirty.set()

    async def finish(self) -> None:
        """Stop streaming and show the final text at once, without the indicator."""
        for task in (self._flusher, self._typing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._flusher = self._typing = None
        if not self._transcript.render():
            self._transcript.apply(TextDelta(text="-# (the model gave an empty answer)"))
        await self._sync(final=True)

    async def _flush_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            # Shielded: cancelling the loop must not abandon a send half-way (a lost message id
            # would mean a duplicate reply); finish() waits for it through the lock instead.
            # A failed request is logged where it happened; the next sync retries with newer text.
            with contextlib.suppress(discord.HTTPException):
                await asyncio.shield(self._sync(final=False))
            await asyncio.sleep(self._pacer.edit_interval(self._channel_id, self._interval))

    async def _keep_typing(self) -> None:
        channel = self._channel or self._source.channel
        while not self._sent_any():
            try:
                await channel.typing()
            except discord.HTTPException as exc:
                log.debug("typing indicator failed: %s", exc)
            await asyncio.sleep(TYPING_REFRESH_S)

    async def _sync(self, *, final: bool) -> None:
        async with self._sync_lock:
            for index, segment in enumerate(self._segments):
                following = self._segments[index + 1 : index + 2]
                text = self._transcript.render(
                    segment.start, following[0].start if following else None
                )
                if text and not final and not following:
                    text += STREAMING_INDICATOR
                # split_message closes a code block left open at the end, so previews render
                # cleanly.
                await self._sync_segment(segment, split_message(text) if text else [], final)
        if self._sent_any() and self._typing is not None:
            self._typing.cancel()

    async def _sync_segment(self, segment: _Segment, parts: list[str], final: bool) -> None:
        for index, part in enumerate(parts):
            if index < len(segment.messages):
                if segment.shown[index] != part:
                    await self._edit(segment, index, part)
            else:
                await self._send(segment, part)
        # The indicator or a split moved: drop parts that no longer exist.
        while final and len(segment.messages) > len(parts):
            stale = segment.messages.pop()
            segment.shown.pop()
            with contextlib.suppress(discord.HTTPException):
                await stale.delete()

    async def _send(self, segment: _Segment, content: str) -> None:
        async with self._pacer.sending(self._channel_id):
            try:
                message = await self._post(segment, content)
            except discord.HTTPException as exc:
                log.warning("could not send a reply part: %s", exc)
                raise
        segment.messages.append(message)
        segment.shown.append(content)

    async def _post(self, segment: _Segment, content: str) -> discord.Message:
        # Each part replies to the one before it; a segment's first part to its prompt; the
        # very first part to the question (or, with reply_in_thread, opens the thread).
        anchor = segment.messages[-1] if segment.messages else segment.anchor
        if anchor is None and self._channel is not None:
            return await self._channel.send(content, allowed_mentions=NO_MENTIONS)
        return await (anchor or self._source).reply(
            content, mention_author=False, allowed_mentions=NO_MENTIONS
        )

    async def _edit(self, segment: _Segment, index: int, content: str) -> None:
        await self._pacer.wait_for_sends(self._channel_id)
        try:
            segment.messages[index] = await segment.messages[index].edit(
                content=content, allowed_mentions=NO_MENTIONS
            )
            segment.shown[index] = content
        except discord.HTTPException as exc:
            # An edit that fails is retried by the next sync with the then-newest text.
            log.warning("could not edit a reply part: %s", exc)


@dataclass
class _Segment:
    """Messages showing the transcript's blocks from `start` up to the next segment's start."""

    start: int
    anchor: discord.Message | None
    messages: list[discord.Message] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)
