"""Turns what a running tool call reports (progress, sampling questions, files) into turn events.

A tool call is awaited as one request, but an MCP server talks during it: progress
notifications, and requests of its own (sampling) that may need a human's approval. The
call runs as a task; what it reports is queued here and yielded into the turn's event stream
while it runs, so the reply shows it at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from bot.core.approval_flow import ask_approval
from bot.core.approvals import ApprovalGate, ApprovalRequest
from bot.core.decisions import SAMPLING_GRANT
from bot.core.elicitation import Action, Answer, ElicitationBroker, pages, parse_schema
from bot.core.events import (
    ApprovalRequested,
    ApprovalResolved,
    Attachment,
    ElicitationRequested,
    ElicitationResolved,
    SamplingUsed,
    ToolCallFinished,
    ToolImages,
    ToolProgress,
    ToolUserContent,
    TurnEvent,
    Usage,
)
from bot.core.state import TurnRequest

# Why a user's daily allowance forbids spending more (None: it does not), given tokens spent
# and not yet stored (bot/core/limits.py's UserLimits.daily_refusal fits).
Allowance = Callable[[int, int], Awaitable[str | None]]


class CallUpdates:
    """Handed to the toolbox with one call; its methods are what the server may do meanwhile."""

    def __init__(
        self,
        call_id: str,
        request: TurnRequest,
        gate: ApprovalGate,
        elicitations: ElicitationBroker | None = None,
        elicitation_timeout_s: float = 300,
        allowance: Allowance | None = None,
    ) -> None:
        self.call_id = call_id
        self._request = request
        self._gate = gate
        self._elicitations = elicitations
        self._elicitation_timeout = elicitation_timeout_s
        self._allowance = allowance
        self._sampled_tokens = 0  # this call's, not stored before the turn ends
        self._queue: asyncio.Queue[TurnEvent] = asyncio.Queue()
        self._asks = itertools.count(1)

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        # The message goes into the tool's one status line: a server's essay must not turn
        # one notification into tens of reply messages.
        shown = one_line(message, MAX_PROGRESS_CHARS) if message else message
        self._queue.put_nowait(
            ToolProgress(call_id=self.call_id, progress=progress, total=total, message=shown)
        )

    async def approve_sampling(self, server: str, summary: dict[str, Any]) -> str | None:
        """Ask the person who started the turn (as for a tool) whether the server may use the
        bot's model; the prompt shows the server, its messages and the token limit. None when
        approved, else why not, in words for the server."""
        approval = ApprovalRequest(
            key=self._request.key,
            call_id=f"{self.call_id}:sampling:{next(self._asks)}",
            server=server,
            tool=f"{server}__sampling",
            arguments=summary,
            requester_id=self._request.user_id,
            grant_as=SAMPLING_GRANT,
        )
        refusal: str | None = None
        open_id: int | None = None
        try:
            async for event in ask_approval(self._gate, approval, shown_tool="sampling"):
                if isinstance(event, ApprovalRequested):
                    open_id = event.approval_id
                if isinstance(event, ApprovalResolved):
                    open_id = None
                    if not event.approved:
                        refusal = (
                            "Nobody approved the request in time."
                            if event.status == "timeout"
                            else "The user declined the request"
                            + (f", and said why: {event.reason}" if event.reason else ".")
                        )
                if isinstance(event, ToolCallFinished):
                    continue  # not a tool call of the model's: the backends must not see it
                self._queue.put_nowait(event)
        finally:
            if open_id is not None:
                # The call ended first: the prompt closes; nobody waits for it any more, so a
                # click is answered "expired" and spends nothing.
                self._queue.put_nowait(
                    ApprovalResolved(
                        call_id=approval.call_id,
                        approval_id=open_id,
                        approved=False,
                        status="timeout",
                    )
                )
        return refusal

    async def elicit(
        self, server: str, message: str, schema: dict[str, Any] | None, url: str | None
    ) -> tuple[str, dict[str, Any] | None]:
        """Ask the requester (or an admin) and wait; ("cancel", None) after the timeout."""
        if self._elicitations is None:
            return "decline", None
        fields = parse_schema(schema or {}) if url is None else []
        pending = self._elicitations.open(self._request.user_id, fields, url)
        self._queue.put_nowait(
            ElicitationRequested(
                call_id=self.call_id,
                elicitation_id=pending.id,
                server=server,
                message=message,
                requester_id=self._request.user_id,
                pages=len(pages(fields)) if url is None and fields else 0,
                url=url,
            )
        )
        action: Action = "cancel"  # unless answered: the call ended or the bot stops
        try:
            answer: Answer = await self._elicitations.wait(pending, self._elicitation_timeout)
            action = answer.action
            return answer.action, answer.content
        finally:
            self._queue.put_nowait(
                ElicitationResolved(call_id=self.call_id, elicitation_id=pending.id, action=action)
            )

    def sampled(self, model: str, input_tokens: int, output_tokens: int) -> None:
        usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
        self._sampled_tokens += input_tokens + output_tokens
        self._queue.put_nowait(SamplingUsed(model=model, usage=usage))

    async def sampling_refusal(self) -> str | None:
        """The asker's daily allowance, counting what this call's sampling spent so far."""
        if self._allowance is None:
            return None
        return await self._allowance(self._request.user_id, self._sampled_tokens)

    async def run(self, call: Awaitable[Any]) -> AsyncIterator[TurnEvent | CallDone]:
        """Yield events while `call` runs, then one `CallDone` holding its result."""
        task = asyncio.ensure_future(call)
        try:
            while not task.done():
                getter = asyncio.ensure_future(self._queue.get())
                await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield getter.result()
                else:
                    getter.cancel()
            while not self._queue.empty():
                yield self._queue.get_nowait()
            result = task.result()
        finally:
            if not task.done():  # the turn was stopped: do not leave the call running
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for_user = user_content(self.call_id, result)
        if for_user is not None:
            yield for_user
        images = tuple(
            Attachment(filename=f"image-{n}", content_type=mime, data=base64.b64decode(data))
            for n, (mime, data) in enumerate(getattr(result, "images", ()), 1)
        )
        if images:
            yield ToolImages(call_id=self.call_id, images=images)
        yield CallDone(result)


class CallDone:
    """The end of a call's updates: its result."""

    def __init__(self, result: Any) -> None:
        self.result = result


MAX_PROGRESS_CHARS = 100  # a progress message shares its tool's one status line
MAX_NOTES_CHARS = 1500  # a result's user-only notes, together: the answer must stay in view
NOTES_FILE = "tool-notes.txt"


def one_line(text: str, limit: int) -> str:
    """`text` on one line (runs of whitespace become one space), cut with "…" past `limit`."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def user_content(call_id: str, result: Any) -> ToolUserContent | None:
    """Files and user-only notes of a result (duck-typed: MCPTools' ToolResult has them).
    Notes beyond MAX_NOTES_CHARS are shown cut, and all of them go along as a text file."""
    files = tuple(
        Attachment(filename=a.filename, content_type=a.content_type, data=a.data)
        for a in getattr(result, "attachments", ())
    )
    notes = tuple(getattr(result, "user_notes", ()))
    if not files and not notes:
        return None
    shown, room = [], MAX_NOTES_CHARS
    for note in notes:
        if len(note) > room:
            if room > 0:
                shown.append(note[:room].rstrip() + "…")
            whole = "\n\n".join(notes).encode()
            files += (Attachment(filename=NOTES_FILE, content_type="text/plain", data=whole),)
            return ToolUserContent(
                call_id=call_id, attachments=files, notes=tuple(shown), notes_file=NOTES_FILE
            )
        shown.append(note)
        room -= len(note) + 1  # and the line break before the next one
    return ToolUserContent(call_id=call_id, attachments=files, notes=notes)


async def run_with_updates(
    toolbox: Any, name: str, arguments: dict[str, Any], updates: CallUpdates
) -> AsyncIterator[TurnEvent | CallDone]:
    async for item in updates.run(toolbox.call(name, arguments, updates=updates)):
        yield item


def images_message(images: list[Attachment], *, responses: bool) -> dict[str, Any]:
    """One user message carrying the images tools returned, for a vision model's next request
    (tool results themselves are text only in both APIs)."""
    urls = [f"data:{a.content_type};base64,{base64.b64encode(a.data).decode()}" for a in images]
    if responses:
        parts: list[dict[str, Any]] = [{"type": "input_text", "text": IMAGES_NOTE}]
        parts += [{"type": "input_image", "image_url": url} for url in urls]
    else:
        parts = [{"type": "text", "text": IMAGES_NOTE}]
        parts += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return {"role": "user", "content": parts}


IMAGES_NOTE = "The images the tools above returned:"
