"""StreamRenderer: shows a turn in Discord by sending and editing replies at a tolerable rate."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import discord

from bot.core import events as mcp
from bot.core.events import ApprovalRequested, ApprovalResolved, TextDelta, TurnEvent, TurnFailed
from bot.discord.attachments import ReplyFiles
from bot.discord.streaming.asking import PROMPT_FAILED, ApprovalUI, QuestionNotAsked, post_prompt
from bot.discord.streaming.budget import Priority
from bot.discord.streaming.deletions import DeletedMessages
from bot.discord.streaming.finishing import begin_finishing, cancel_tasks, through_cancel
from bot.discord.streaming.mentions import NO_MENTIONS
from bot.discord.streaming.reasoning import ReasoningView
from bot.discord.streaming.retry import RETRY_DELAYS_S, describe, is_transient, timed, with_retries
from bot.discord.streaming.segment import Segment
from bot.discord.streaming.split import split_message
from bot.discord.streaming.stop_button import StopButtonSpot
from bot.discord.streaming.transcript import STREAMING_INDICATOR, Transcript
from bot.discord.streaming.typing_indicator import keep_typing
from bot.discord.streaming.write_scheduler import WriteScheduler

log = logging.getLogger(__name__)
T = TypeVar("T")

FINAL_ATTEMPTS = 3  # whole final syncs, each request in them retried as in retry.py
QUEUED_NOTICE_S = 3.0  # a turn waiting this long for its conversation says so
QUEUED_LINE = "-# ⏳ Queued behind the current question here; I'll answer as soon as it's done."
INTERRUPTED = "Interrupted: I was restarting and could not finish. Please ask again."
ASKER_LINE = "-# ↪ For <@{user}> (the question was deleted)"
UNKNOWN_MESSAGE = 10008


class StreamRenderer:
    """Feed it a turn's events; it keeps at most one Discord request in flight and always shows
    the newest text. Used as `async with StreamRenderer(...) as r: await r.handle(event)`.

    A turn may wait for its conversation (another turn holds it): until `start()` is called it
    does not type and does not count against the channel's pace, and after QUEUED_NOTICE_S it
    shows one line saying it is queued, which the answer later replaces."""

    def __init__(
        self,
        source: discord.Message,
        *,
        edit_interval_s: float,
        approvals: ApprovalUI,
        budget: WriteScheduler,
        deleted: DeletedMessages,
        channel: discord.Thread | None = None,
        reasoning: str = "status",
        elicitations: Any = None,  # bot/discord/asks/elicitation.py's DiscordElicitations
        stop_view: Callable[[], discord.ui.View] | None = None,  # the Stop button, if shown
        usage_footer: bool = False,
        replacing: tuple[int, ...] = (),  # the parts of a reply a shutdown cut: written into
    ) -> None:
        self._source = source
        # Where the first part goes: a reply to `source`, or (reply_in_thread) a new thread.
        self._channel = channel
        self._interval = edit_interval_s
        self._approvals = approvals
        # Every message write of this reply waits its turn in the channel's budget.
        self._budget = budget
        self._reply_id = source.id
        self._prepaid = False  # the flusher already holds a write for its next request
        self._finalizing = False
        self._elicitations = elicitations
        self._deleted = deleted
        self._channel_id = (channel or source.channel).id
        self._transcript = Transcript(usage_footer)
        # After an approval prompt the answer continues below it, in a new segment of messages.
        self._segments: list[Segment] = [Segment(start=0, anchor=None)]
        where: Any = source.channel  # its parts are edited as the queued line is, never sent
        for part_id in replacing if channel is None else ():
            self._segments[0].messages.append(where.get_partial_message(part_id))
            self._segments[0].shown.append(QUEUED_LINE)
        self._dirty = asyncio.Event()
        # llm.reasoning: how thinking is shown; it wakes the flusher to keep its seconds counting
        self._reasoning = ReasoningView(reasoning, wake=self._dirty.set)
        self._sync_lock = asyncio.Lock()
        self._started = False
        self._queued = False  # the queued line is (to be) shown in place of the answer
        self._in_budget = contextlib.ExitStack()
        self._flusher: asyncio.Task[None] | None = None
        self._typing: asyncio.Task[None] | None = None
        self._queue_timer: asyncio.Task[None] | None = None
        self._files = ReplyFiles.for_reply(source)  # tool results' files, sent at the end
        self._button = StopButtonSpot(stop_view)
        self._finishing: asyncio.Task[None] | None = None

    # -- the turn's life -----------------------------------------------------------------------

    async def __aenter__(self) -> StreamRenderer:
        self._flusher = asyncio.create_task(self._flush_loop())
        self._queue_timer = asyncio.create_task(self._notice_queue())
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            # Cut off at shutdown: a half answer must not look complete.
            self._transcript.apply(TurnFailed(message=INTERRUPTED))
        await self.finish()

    def start(self) -> None:
        """The turn holds its conversation now: type until the first words, pace as streaming."""
        if self._started:
            return
        self._started = True
        self._in_budget.enter_context(self._budget.reply(self._channel_id, self._reply_id))
        if not self._content_shown():
            self._typing = asyncio.create_task(
                keep_typing(
                    self._channel or self._source.channel, self._budget, self._content_shown
                )
            )

    async def handle(self, event: TurnEvent) -> None:
        if self._reasoning.apply(event):
            self._dirty.set()
        changed = self._transcript.apply(event)
        if isinstance(event, TextDelta):
            if changed:
                self._dirty.set()  # the flusher picks it up at its own pace
            return
        if isinstance(event, ApprovalRequested | mcp.ElicitationRequested):
            ui = self._ui(event)
            # The user must see what led to the question before the buttons appear below it.
            with contextlib.suppress(Exception):  # logged in _sync_quietly
                await self._sync_quietly(final=False)
            last = self._segments[-1].messages or self._segments[0].messages
            anchor = last[-1] if last else self._source
            try:
                prompt = await post_prompt(ui, event, anchor, self._channel_id)
            except QuestionNotAsked:
                # The turn cannot go on without its question; finish() shows why it stopped.
                self._transcript.apply(TurnFailed(message=PROMPT_FAILED))
                raise
            self._segments.append(Segment(start=self._transcript.seal(), anchor=prompt))
        elif isinstance(event, ApprovalResolved | mcp.ElicitationResolved):
            ui = self._ui(event)
            try:
                await ui.show_resolution(event)
            except Exception as exc:
                # Only the prompt's outcome line is lost; the answer goes on below it.
                log.warning("could not show a question's outcome: %s", describe(exc))
        elif isinstance(event, mcp.ToolUserContent):
            for notice in self._files.add(event.attachments):
                changed = self._transcript.apply(notice) or changed
        if changed:
            self._dirty.set()

    def part_ids(self) -> tuple[int, ...]:
        """The reply's parts above any prompt: what an answer after a restart may replace."""
        return tuple(m.id for m in self._segments[0].messages) if self._channel is None else ()

    def _ui(self, event: TurnEvent) -> Any:  # approvals and servers' questions show alike
        approval = isinstance(event, ApprovalRequested | ApprovalResolved)
        return self._approvals if approval else self._elicitations

    async def finish(self) -> None:
        """Stop streaming and show the final text at once, without the indicator (whole, even
        when a shutdown's cancel lands meanwhile)."""
        self._finishing = self._finishing or begin_finishing(self._finish())
        await through_cancel(self._finishing)

    async def _finish(self) -> None:
        try:
            await self._stop_tasks()
            self._finalizing = True  # from here on every write is the final text: it goes first
            if not self._transcript.render(end=len(self._transcript)):  # no footer alone
                self._transcript.apply(TextDelta(text="-# (the model gave an empty answer)"))
            for attempt in range(1, FINAL_ATTEMPTS + 1):
                try:
                    await self._sync(final=True)
                    await self._files.send_below(self._segments, self._paid)
                    return
                except Exception as exc:
                    log.warning(
                        "could not show the final answer in channel %s (attempt %d/%d): %s",
                        self._channel_id,
                        attempt,
                        FINAL_ATTEMPTS,
                        describe(exc),
                    )
                    if not is_transient(exc):
                        break  # refused for good (e.g. no access any more): trying again won't help
                    if attempt < FINAL_ATTEMPTS:
                        await asyncio.sleep(RETRY_DELAYS_S[-1])
            log.error("gave up showing the final answer in channel %s", self._channel_id)
        finally:
            await self._stop_typing()
            self._in_budget.close()

    async def _stop_tasks(self) -> None:
        await cancel_tasks(self._queue_timer, self._flusher)
        self._queue_timer = self._flusher = None
        await self._stop_typing()

    async def _stop_typing(self) -> None:
        await cancel_tasks(self._typing)
        self._typing = None

    # -- background tasks ----------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._dirty.wait()
            # Wait for the budget before reading the text, so the write carries the newest text
            # and everything that arrived while waiting is one edit, not many.
            priority = Priority.EDIT if self._content_shown() else Priority.FIRST
            await self._budget.acquire(self._channel_id, self._reply_id, priority)
            self._prepaid = True
            self._dirty.clear()
            # Shielded: cancelling the loop must not abandon a send half-way (a lost message id
            # would mean a duplicate reply); finish() waits for it through the lock instead.
            # A failed sync is logged; the next one retries with newer text.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._sync_quietly(final=False))
            if self._prepaid:
                # Nothing had changed after all: give the write back rather than let it hold a
                # place in the channel's window for a whole period.
                self._prepaid = False
                self._budget.unused(self._channel_id)
            await asyncio.sleep(self._interval)

    async def _notice_queue(self) -> None:
        await asyncio.sleep(QUEUED_NOTICE_S)
        if not self._started:
            self._queued = True
            self._dirty.set()

    # -- showing the transcript ----------------------------------------------------------------

    def _content_shown(self) -> bool:
        """Part of the answer itself (not just the queued line) is visible."""
        first = self._segments[0]
        return bool(first.messages) and first.shown[0] != QUEUED_LINE

    def _segment_text(self, index: int, final: bool) -> str:
        segment = self._segments[index]
        if index == 0 and not segment.messages and self._source.id in self._deleted:
            # Known gone before the first words (MESSAGE_DELETE): no reply arrow to point with.
            self._answer_deleted_question(segment)
        following = self._segments[index + 1 : index + 2]
        text = self._transcript.render(segment.start, following[0].start if following else None)
        if index == 0:
            text = self._reasoning.frame(text, final=final)
        if index == 0 and not text and self._queued and not final:
            return QUEUED_LINE
        if text and segment.header:
            text = f"{segment.header}\n{text}"
        if text and not final and not following:
            text += STREAMING_INDICATOR
        return text

    async def _sync_quietly(self, *, final: bool) -> None:
        try:
            await self._sync(final=final)
        except Exception as exc:
            log.warning(
                "could not update a reply in channel %s: %s", self._channel_id, describe(exc)
            )
            raise

    async def _sync(self, *, final: bool) -> None:
        async with self._sync_lock:
            headers = [segment.header for segment in self._segments]
            await self._sync_all(final)
            if headers != [segment.header for segment in self._segments]:
                await self._sync_all(final)  # a send found the question deleted: say whose
        if self._content_shown():
            self._budget.shown(self._channel_id, self._reply_id)
            if self._typing is not None:
                self._typing.cancel()

    async def _sync_all(self, final: bool) -> None:
        for index, segment in enumerate(self._segments):
            text = self._segment_text(index, final)
            # split_message closes a code block left open at the end, so previews render cleanly.
            await self._sync_segment(segment, split_message(text) if text else [], final)

    async def _sync_segment(self, segment: Segment, parts: list[str], final: bool) -> None:
        # A part deleted by someone is sent again, and so is everything after it (order matters).
        gone = next((i for i, m in enumerate(segment.messages) if m.id in self._deleted), None)
        if gone is not None:
            await self._forget_from(segment, gone)
        for index, part in enumerate(parts):
            newest = segment is self._segments[-1] and index == len(parts) - 1 and self._started
            button = self._button.wanted(newest and not (final or self._finalizing))
            changed = index < len(segment.messages) and (
                segment.shown[index] != part
                or self._button.stale(segment.messages[index].id, button)
            )
            if changed and not await self._edit(segment, index, part, button):
                await self._forget_from(segment, index)
            if index >= len(segment.messages):
                await self._send(segment, part, button)
        # The indicator or a split moved: drop parts that no longer exist.
        while final and len(segment.messages) > len(parts):
            stale = segment.messages.pop()
            segment.shown.pop()
            with contextlib.suppress(Exception):
                await self._paid(Priority.FINAL, stale.delete)

    async def _forget_from(self, segment: Segment, index: int) -> None:
        later = segment.messages[index + 1 :]
        del segment.messages[index:], segment.shown[index:]
        for message in later:
            with contextlib.suppress(Exception):
                await self._paid(Priority.FINAL, message.delete)

    async def _send(self, segment: Segment, content: str, button: bool = False) -> None:
        # One nonce for all tries: if a dropped connection hid a send that worked, Discord
        # answers the retry with that message instead of posting it twice.
        nonce = secrets.randbelow(10**18)
        priority = Priority.FINAL if self._finalizing else Priority.FIRST
        post = timed(lambda: self._post(segment, content, nonce, button))
        message = await with_retries("sending a reply part", lambda: self._paid(priority, post))
        segment.messages.append(message)
        segment.shown.append(content)
        self._button.written(message.id, button, {"view": None} if button else {})

    async def _post(
        self, segment: Segment, content: str, nonce: int, button: bool = False
    ) -> discord.Message:
        # Each part replies to the one before it; a segment's first part to its prompt; the
        # very first part to the question (or, with reply_in_thread, opens the thread).
        anchor = segment.messages[-1] if segment.messages else segment.anchor
        if anchor is None and self._channel is None:
            anchor = self._source
        target = self._channel or self._source.channel
        extra = self._button.change(None, button)
        if anchor is None or anchor.id in self._deleted:
            if anchor is self._source:
                self._answer_deleted_question(segment)
            return await target.send(content, allowed_mentions=NO_MENTIONS, nonce=nonce, **extra)
        # A reply to a message deleted meanwhile is sent as a plain message, not refused.
        message = await target.send(
            content,
            reference=anchor.to_reference(fail_if_not_exists=False),
            mention_author=False,
            allowed_mentions=NO_MENTIONS,
            nonce=nonce,
            **extra,
        )
        if message.reference is None:
            self._deleted.note(anchor.id)
            if anchor is self._source:
                self._answer_deleted_question(segment)
        return message

    async def _paid(self, priority: Priority, request: Callable[[], Awaitable[T]]) -> T:
        """Make one message write once the channel's budget allows it."""
        if self._prepaid:
            self._prepaid = False
        else:
            await self._budget.acquire(self._channel_id, self._reply_id, priority)
        return await request()

    def _answer_deleted_question(self, segment: Segment) -> None:
        # Without the reply arrow nobody would know whom this answers: name the asker.
        if not segment.header and self._channel is None:
            segment.header = ASKER_LINE.format(user=self._source.author.id)
            self._dirty.set()

    async def _edit(self, segment: Segment, index: int, content: str, button: bool = False) -> bool:
        """Shows `content` in a part; False if the part is gone (deleted by someone)."""
        message = segment.messages[index]
        priority = Priority.FINAL if self._finalizing else Priority.EDIT
        extra = self._button.change(message.id, button)
        edit = timed(lambda: message.edit(content=content, allowed_mentions=NO_MENTIONS, **extra))
        try:
            segment.messages[index] = await with_retries(
                "editing a reply part", lambda: self._paid(priority, edit)
            )
            segment.shown[index] = content
            self._button.written(message.id, button, extra)
        except discord.NotFound as exc:
            if exc.code != UNKNOWN_MESSAGE:
                raise
            log.info("reply part %s was deleted; sending it again", message.id)
            self._deleted.note(message.id)
            return False
        except Exception as exc:
            if is_transient(exc):
                raise  # the whole sync is tried again: by the flusher, or by finish()
            # Refused for good (e.g. too old to edit): keep what it shows, go on with the rest.
            log.warning("could not edit a reply part: %s", describe(exc))
        return True
