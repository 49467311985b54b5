"""The `chat` backend: litellm chat completions (any provider) with an in-process tool loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from bot.backends import chat_transport, stopped
from bot.backends.base import turn_instructions, user_field
from bot.backends.batches import batches_of, folded
from bot.backends.chat_round import ChatRound, absorb
from bot.backends.context import budget_for, estimate_tokens, fit, model_window
from bot.backends.failures import (
    CUT_SHORT,
    REFUSED,
    EmptyAnswer,
    StreamCut,
    classify,
    ran_note,
    sleep_before_retry,
    still_too_long,
    tool_label,
)
from bot.backends.fallback import run_with_fallbacks
from bot.backends.history import (
    trim_history,
    user_content,
    with_placeholder,
    without_image_urls,
    without_thinking,
)
from bot.backends.images import fetch_images
from bot.backends.prompt_cache import cache_key, keys_cache, marks_cache, with_breakpoints
from bot.backends.routes import route
from bot.config import LLMConfig
from bot.core.events import (
    Attachment,
    Notice,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    ToolImages,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    Usage,
)
from bot.core.resume import Resumable, call_entry, calls_of
from bot.core.state import ConversationState, TurnRequest
from bot.core.stops import stopped_here
from bot.core.tool_calls import ToolCall, ToolExecutor, unknown_tool
from bot.core.tool_updates import images_message

log = logging.getLogger(__name__)

EMPTY_RETRIES = 2  # an empty stream is some providers' silent rate limit: worth a couple more


# Kept importable from here: check.py and app.py preload litellm through this name.
import_litellm = chat_transport.import_litellm


class ChatBackend:
    name = "chat"

    def __init__(
        self, llm: LLMConfig, *, tools: ToolExecutor | None = None, secret: bytes | None = None
    ) -> None:
        self._llm = llm
        self._tools = tools
        self._secret = secret  # the install's, for the prompt cache key (bot/core/keyed.py)
        # OpenAI-compatible models go through the openai SDK, the rest through litellm.
        self._transport = chat_transport.ChatTransport(llm)

    async def aclose(self) -> None:
        await self._transport.aclose()

    def run_turn(self, state: ConversationState, request: TurnRequest) -> AsyncIterator[TurnEvent]:
        return run_with_fallbacks(self._llm, state, request, self._run)

    def resume_turn(
        self, state: ConversationState, request: TurnRequest, resumed: Resumable
    ) -> AsyncIterator[TurnEvent]:
        # On the model it began on, without fallbacks: another model starts a turn over.
        return self._run(state, request, resumed.model, resumed)

    async def _run(
        self,
        state: ConversationState,
        request: TurnRequest,
        model: str,
        resumed: Resumable | None = None,
    ) -> AsyncGenerator[TurnEvent, None]:
        """The turn on one model (`with_fallbacks` picks which); `resumed`: from where it stood
        at a restart, the calls of its round still to run."""
        llm = self._llm
        images = await fetch_images(request.image_urls)
        history = without_image_urls(state.history)
        content = with_placeholder(request.text, images.failure_note())
        new: list[dict[str, Any]] = [
            {"role": "user", "content": user_content(content, images.data_urls, responses=False)}
        ]
        stored_user = {
            "role": "user",
            "content": with_placeholder(request.text, images.placeholder()),
        }
        window = llm.max_context_tokens or model_window(model)
        budget = budget_for(window, llm.params)
        usage = Usage()
        ran: list[str] = []
        repaired = False
        tools = self._tools.chat_tools() if self._tools else []
        round_number = 0
        tool_images: list[Attachment] = []  # tools' images, for the next request only (vision)
        extras: dict[str, Any] = {}  # the same on every request of the turn
        if user := user_field(request.user_id, llm.send_user_id):
            extras["user"] = user
        if self._secret and keys_cache(
            llm.prompt_cache, model, route(llm, model).base_url, chat=True
        ):
            extras["prompt_cache_key"] = cache_key(self._secret, request.key)
        marks = marks_cache(llm.prompt_cache, model)
        resumed_calls: list[ToolCall] | None = None
        if resumed is not None:
            where = resumed.position
            history, stored_user = list(where["history"]), where["user"]
            new = [stored_user, *where["rounds"]]
            round_number = where["round"]
            resumed_calls = [
                ToolCall(call_id=i, name=n, arguments=a) for i, n, a in calls_of(where)
            ]

        def position(calls: list[ToolCall], at_round: int) -> dict[str, Any]:
            """Where the turn stands, for a restart (bot/core/resume.py)."""
            return {
                "backend": self.name,
                "model": model,
                "user_name": request.user_name,
                "history": history,
                "user": stored_user,
                "rounds": new[1:],
                "calls": [call_entry(c.call_id, c.name, c.arguments) for c in calls],
                "round": at_round,
            }

        def keep(items: list[dict[str, Any]]) -> ConversationState:
            stored = trim_history(without_thinking(items), llm.max_history_messages)
            return ConversationState(backend=self.name, history=tuple(stored), model=state.model)

        result = ChatRound()
        streaming = False  # a stop then cuts this round's words
        started: set[str] = set()  # calls that began running (a stop may cut them mid-way)
        try:
            while True:
                # The last round offers no tool calls, so the model has to answer in words.
                last_round = round_number == llm.max_tool_rounds
                first: Resumable | None = None  # the call of the approval a restart cut
                if resumed_calls is not None:
                    calls, resumed_calls, first = resumed_calls, None, resumed
                else:
                    context, _ = fit(
                        trim_history(history + new, llm.max_history_messages), budget, len(new)
                    )
                    prompt = turn_instructions(request, llm.system_prompt)
                    messages = [{"role": "system", "content": prompt}, *context]
                    if (
                        marks
                    ):  # the last stored message before the question: the end of what repeats
                        messages = with_breakpoints(messages, len(context) - len(new))
                    if tool_images:  # not stored: later turns keep the tool's text note only
                        messages.append(images_message(tool_images, responses=False))
                        tool_images = []
                    result = ChatRound()
                    streaming = True
                    async for event in self._stream(
                        model, messages, tools, last_round, result, extras
                    ):
                        yield event
                    streaming = False
                    usage = usage + result.cost
                    request.cut.spend(result.cost, model)
                    failure = result.failure
                    if failure is not None and failure.overflow and not repaired:
                        # What is stored no longer fits: trim harder, tell the user, retry once.
                        repaired = True
                        size = estimate_tokens(context)
                        budget = min(budget or size, size // 2)
                        fitted, trimmed = fit(context, budget, len(new))
                        history, new = (
                            fitted[: len(fitted) - len(new)],
                            fitted[len(fitted) - len(new) :],
                        )
                        if trimmed:
                            log.info("context overflow: %s", trimmed)
                            yield Notice(text=trimmed.describe())
                            continue
                    if failure is not None:
                        if failure.overflow and repaired:
                            failure = still_too_long()
                        # Completed tool rounds are kept (no tool runs again), and a repaired history.
                        rounds = new[1:]
                        saved = keep(history + [stored_user, *rounds]) if rounds else None
                        if saved is None and repaired:
                            saved = keep(history)
                        yield TurnFailed(
                            message=failure.message + ran_note(ran),
                            retryable=failure.retryable,
                            state=saved,
                            usage=usage,
                            model=model,
                            transient=failure.transient,
                        )
                        return
                    message = result.assistant_message()
                    if message is not None:
                        new.append(message)
                    if result.refused:
                        yield Notice(text=REFUSED)
                    elif result.finish in CUT_SHORT:
                        yield Notice(text=CUT_SHORT[result.finish])
                    if not result.calls:
                        break
                    calls = result.tool_calls()
                for n, call in enumerate(calls):
                    request.resume.position = position(calls[n:], round_number)
                    async for event in self._run_call(call, request, first if n == 0 else None):
                        yield event
                        if isinstance(event, ToolCallStarted):
                            started.add(event.call_id)
                        if isinstance(event, ToolCallFinished):
                            if event.outcome != "denied":
                                ran.append(tool_label(event))
                            new.append(
                                {
                                    "role": "tool",
                                    "tool_call_id": call.call_id,
                                    "content": event.output,
                                }
                            )
                        elif isinstance(event, ToolImages) and llm.vision:
                            tool_images += event.images
                request.cut.state = keep(history + [stored_user, *new[1:]])  # a shutdown keeps it
                request.resume.position = position([], round_number)  # and a restart this
                if self._tools is not None:
                    await self._tools.keep_position(request)
                if last_round:
                    break
                round_number += 1
        except asyncio.CancelledError:
            if not stopped_here(request.stop):
                raise
            # Stopped by a person: the words shown become the (cut) answer; tools that ran stay.
            rounds = stopped.chat_rounds(new[1:], started, result.text if streaming else "")
            yield TurnCompleted(
                state=keep(history + [stored_user, *rounds]) if rounds else state,
                usage=usage + result.cost if streaming else usage,
                model=model,
                stopped_by=request.stop.by,
            )
            return
        yield TurnCompleted(state=keep(history + [stored_user, *new[1:]]), usage=usage, model=model)

    async def _run_call(
        self, call: ToolCall, request: TurnRequest, resumed: Resumable | None
    ) -> AsyncIterator[TurnEvent]:
        if self._tools is not None:
            async for event in self._tools.run(call, request, resumed=resumed):
                yield event
            return
        # No tools configured, yet the model called one: it still needs an answer, or the stored
        # history would hold a call without its result, which providers refuse from then on.
        yield unknown_tool(call)

    async def _stream(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        last_round: bool,
        result: ChatRound,
        extras: dict[str, Any],
    ) -> AsyncIterator[TurnEvent]:
        """One completion with retries; retries stop once any text has been shown. A final
        failure is left in `result.failure` for the turn to decide on."""
        # Endpoint, key, timeout and retries are the transport's business (chat_transport.py).
        kwargs: dict[str, Any] = {
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            **self._llm.params,
            **extras,
        }
        if tools:
            kwargs["tools"] = tools
            if last_round:
                kwargs["tool_choice"] = "none"
        attempt = 0
        while True:
            shown = False
            try:
                stream = await self._transport.create(model, **kwargs)
                try:
                    async for chunks in batches_of(stream):
                        for event in folded(chunks, lambda c: absorb(c, result)):
                            shown = shown or isinstance(event, TextDelta)
                            yield event
                finally:
                    # A stop lands here mid-stream: end the connection now, so the provider
                    # stops generating (and billing) at once.
                    await chat_transport.close_stream(stream)
                if result.finish is None:
                    raise StreamCut("stream ended without a finish reason")
                if not result.text and not result.calls and result.finish not in CUT_SHORT:
                    raise EmptyAnswer(f"finish_reason {result.finish} with no text or tool call")
                result.finalize()
                return
            except Exception as exc:
                failure = classify(exc)
                log.warning("chat completion failed: %s: %s", type(exc).__name__, exc)
                retries = self._llm.max_retries
                limit = min(EMPTY_RETRIES, retries) if isinstance(exc, EmptyAnswer) else retries
                if shown or not failure.retryable or attempt >= limit:
                    result.failure = failure
                    return
                await sleep_before_retry(attempt, failure)
                attempt += 1
                result.reset()
