"""The `responses` backend: OpenAI Responses API with bot-side tools and server-side MCP servers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace
from typing import Any

from bot.backends.base import (
    OpenAIClients,
    turn_instructions,
)
from bot.backends.context import budget_for, fit, model_window
from bot.backends.failures import (
    REFUSED,
    ran_note,
    still_too_long,
    tool_label,
)
from bot.backends.fallback import run_with_fallbacks
from bot.backends.history import (
    trim_history,
    user_content,
    with_placeholder,
    without_image_urls,
)
from bot.backends.images import fetch_images
from bot.backends.responses_asks import Verdict, ask_server_call
from bot.backends.responses_events import ApprovalAsk, Round
from bot.backends.responses_items import (
    call_item,
    is_output,
    output_item,
    overflow_repair,
)
from bot.backends.responses_mcp import mcp_tool
from bot.backends.responses_request import request_arguments, request_extras
from bot.backends.responses_resume import RoundAt, restore
from bot.backends.responses_resume import position as position_of
from bot.backends.responses_stream import stream_response
from bot.backends.stopped import cut_answer, open_calls, server_carry
from bot.config import LLMConfig, MCPServerConfig
from bot.core.events import (
    Attachment,
    Notice,
    ToolCallFinished,
    ToolCallStarted,
    ToolImages,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    Usage,
)
from bot.core.resume import Resumable
from bot.core.state import ConversationState, TurnRequest
from bot.core.stops import stopped_here
from bot.core.tool_calls import ToolCall, ToolExecutor, unknown_tool
from bot.core.tool_updates import images_message

log = logging.getLogger(__name__)

ROUNDS_USED = "Not run: this turn reached its limit of tool rounds."
NO_ANSWER_ID = (
    "The model service did not identify its answer, so the tool results could not be sent "
    "back. Try again."
)


class ResponsesBackend:
    name = "responses"

    def __init__(
        self,
        llm: LLMConfig,
        *,
        tools: ToolExecutor | None,
        servers: dict[str, MCPServerConfig],
        secret: bytes | None = None,
    ) -> None:
        self._llm = llm
        self._tools = tools
        # The install's (bot/core/keyed.py): keys safety_identifier and prompt_cache_key.
        self._secret = secret
        self._server_tools = [
            mcp_tool(name, server) for name, server in servers.items() if server.server_side
        ]
        self._server_side = {name for name, server in servers.items() if server.server_side}
        self._clients = OpenAIClients(llm)

    async def aclose(self) -> None:
        await self._clients.aclose()

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
        """The turn on one model (`with_fallbacks` picks which)."""
        llm = self._llm
        local = llm.state == "local"
        images = await fetch_images(request.image_urls)
        placeholder = images.placeholder()
        content = with_placeholder(request.text, images.failure_note())
        user_item = {
            "role": "user",
            "content": user_content(content, images.data_urls, responses=True),
        }
        stored_user = {"role": "user", "content": with_placeholder(request.text, placeholder)}
        history = without_image_urls(state.history) if local else []
        # With state server, history holds what the server does not: answers to calls the stored
        # response still waits for (a turn that failed or ran out of rounds after the model asked
        # for tools), and a stopped turn's question and cut answer.
        pending = [] if local else list(state.history)
        kept: list[dict[str, Any]] = [user_item]  # this turn's items, for local history
        function_tools = self._tools.responses_tools() if self._tools else []
        own_tools = {tool["name"] for tool in function_tools}
        tools = [*function_tools, *self._server_tools]
        # `chained`: the next request continues the server's stored response and sends only new
        # items. Always so with state server. With state local it starts once the server holds
        # something we do not keep (an answered approval and the MCP call it ran), and then
        # holds for the rest of the turn so the model still sees that call's result.
        chained = not local
        previous = None if local else state.previous_response_id
        send: list[dict[str, Any]] = [*pending, user_item]
        answered: set[str] = set()
        usage = Usage()
        ran: list[str] = []
        final_id: str | None = previous
        budget = budget_for(llm.max_context_tokens or model_window(model), llm.params)
        repaired = False
        round_number = 0
        images_item: dict[str, Any] | None = None  # tools' images for the next request (vision)
        extras = request_extras(llm, self._secret, request, model)
        approved: list[str] = []  # tools a person approved in the request about to be sent
        response_id: str | None = None  # of the round whose calls and approvals run now
        calls: list[ToolCall] = []  # the round's own calls, answered one by one
        asks: list[ApprovalAsk] = []  # the round's server-side approval requests
        resuming = resumed is not None
        if resumed is not None:
            at = restore(resumed.position)
            history, stored_user, kept = at.history, at.user, [at.user, *at.kept]
            user_item, pending, calls, asks = stored_user, [], at.calls, at.asks
            answered.update(at.answered)
            round_number, chained, response_id, send = at.round, at.chained, at.response_id, at.send
            approved, previous = at.approved, at.previous
            final_id = previous

        def position(calls_left: list[ToolCall], asks_left: list[ApprovalAsk]) -> dict[str, Any]:
            """Where the turn stands, for a restart (bot/core/resume.py)."""
            sent = [item for item in send if item is not images_item]
            at = RoundAt(
                history, stored_user, kept[1:], calls_left, asks_left, sent, [*answered],
                round_number, response_id, previous, chained, approved,
            )  # fmt: skip
            return position_of(self.name, model, request.user_name, at)

        def keep(
            items: list[dict[str, Any]], last_id: str | None, waiting: list[dict[str, Any]]
        ) -> ConversationState:
            if local:
                stored = trim_history(items, llm.max_history_messages)
                return ConversationState(
                    backend=self.name, history=tuple(stored), model=state.model
                )
            return ConversationState(
                backend=self.name,
                previous_response_id=last_id,
                # Answers only make sense to the response that asked: none without an id.
                history=tuple(waiting) if last_id else (),
                model=state.model,
            )

        def after_failure(sent: list[dict[str, Any]]) -> ConversationState | None:
            """What a failed turn stores: the rounds that completed (tools that already ran),
            or a repaired history; None keeps the stored state as it was."""
            rounds = kept[1:]
            if local:
                saved = keep(history + [stored_user, *rounds], None, []) if rounds else None
                if saved is None and repaired:
                    saved = keep(history, None, [])
                return saved
            if round_number > 0 or previous != state.previous_response_id:
                # The server holds the rounds that completed; send our answers next turn.
                return keep([], previous, [i for i in sent if is_output(i)])
            return None

        result = Round(answered=answered)
        streaming = False  # a stop then cuts this round's words
        asked: list[str] = []  # server-side approvals of the round already answered
        started: set[str] = set()  # calls that began running (a stop may cut them mid-way)
        try:
            while True:
                # The last round offers no tool calls, so the model has to answer in words.
                last_round = round_number == llm.max_tool_rounds
                first: Resumable | None = None  # the call of the approval a restart cut
                if resuming:
                    resuming, first, outgoing = False, resumed, send
                else:
                    if chained:
                        items = outgoing = send
                    else:
                        window = trim_history(history + kept, llm.max_history_messages)
                        items, _ = fit(window, budget, len(kept))
                        outgoing = items
                        if images_item is not None:
                            # Sent once, never kept: later turns see the tool's text note only. It stays
                            # out of `items`, which an overflow repair splits into history and kept.
                            outgoing = [*items, images_item]
                    images_item = None
                    kwargs = {
                        **request_arguments(llm, model, outgoing, previous, tools, last_round),
                        **extras,
                    }
                    kwargs["instructions"] = turn_instructions(request, llm.system_prompt)
                    result = Round(answered=answered)
                    streaming, calls, asked = True, [], []
                    # Only the id loaded from storage may be stale; ids from this turn are fresh.
                    may_start_fresh = round_number == 0 and previous is not None
                    if approved and request.resume.position is not None and self._tools:
                        # Once this reaches the server it may run what was approved: a restart
                        # from here must not send it again.
                        request.resume.position = {**request.resume.position, "sent": True}
                        await self._tools.keep_position(request)
                    async for event in stream_response(
                        self._clients.for_model(model),
                        llm,
                        kwargs,
                        result,
                        may_start_fresh,
                        approved,
                    ):
                        yield event
                    streaming = False
                    approved = []
                    usage = usage + result.cost
                    request.cut.spend(result.cost, model)
                    failure = result.failure
                    if round_number == 0 and "previous_response_id" not in kwargs:
                        previous = final_id = (
                            None  # the stored id was gone: this turn started fresh
                        )
                    if failure is not None and failure.overflow and not repaired:
                        repaired = True
                        repair = overflow_repair(
                            kwargs, items, len(kept), budget, round_number == 0
                        )
                        if repair is not None:
                            yield Notice(text=repair.notice)
                            budget, previous, send = repair.budget, repair.previous, repair.send
                            final_id = previous
                            if repair.items is not None:
                                history = repair.items[: len(repair.items) - len(kept)]
                                kept = repair.items[len(repair.items) - len(kept) :]
                            continue
                    if failure is not None:
                        if failure.overflow and repaired:
                            failure = still_too_long()
                        yield TurnFailed(
                            message=failure.message + ran_note(ran),
                            retryable=failure.retryable,
                            state=after_failure(send),
                            usage=usage,
                            model=model,
                            transient=failure.transient,
                        )
                        return
                    final_id = result.response_id
                    pending = []
                    if result.refused:
                        yield Notice(text=REFUSED)
                    if result.text:
                        kept.append({"role": "assistant", "content": result.text})
                    calls = result.calls_to_run(own_tools)
                    asks, response_id = list(result.approvals), result.response_id
                    if not calls and not asks:
                        break
                    if last_round:
                        log.warning(
                            "model still asked for tools after %d rounds; stopping", round_number
                        )
                        # The stored response waits for these answers: without them every later turn
                        # would be refused. They go with the next turn's message.
                        pending = [output_item(call.call_id, ROUNDS_USED) for call in calls]
                        break
                    send = []
                tool_images: list[Attachment] = []
                for n, call in enumerate(calls):
                    request.resume.position = position(calls[n:], asks)
                    output = ""
                    resumed_call, first = (first, None) if n == 0 else (None, first)
                    async for event in self._run_call(call, request, resumed_call):
                        yield event
                        if isinstance(event, ToolCallStarted):
                            started.add(event.call_id)
                        if isinstance(event, ToolCallFinished):
                            output = event.output
                            if event.outcome != "denied":
                                ran.append(tool_label(event))
                        elif isinstance(event, ToolImages) and llm.vision:
                            tool_images += event.images
                    answer = output_item(call.call_id, output)
                    kept += [call_item(call), answer]
                    send.append(answer)
                if tool_images:
                    images_item = images_message(tool_images, responses=True)
                    send.append(images_item)
                for n, ask in enumerate(asks):
                    request.resume.position = position([], asks[n:])
                    verdict = Verdict()
                    resumed_ask, first = first, None
                    async for event in ask_server_call(
                        self._tools, self._server_side, ask, request, verdict, resumed_ask
                    ):
                        yield event
                    answered.add(ask.id)
                    asked.append(ask.id)
                    response = {
                        "type": "mcp_approval_response",
                        "approval_request_id": ask.id,
                        "approve": verdict.approved,
                    }
                    if verdict.reason:
                        response["reason"] = verdict.reason  # the model reads why, and adapts
                    send.append(response)
                    if verdict.approved:
                        approved.append(
                            f"`{ask.server}.{ask.tool}`" if ask.server else f"`{ask.tool}`"
                        )
                # The server holds the pending approval request, so its answer can only continue
                # that stored response, whatever llm.state says.
                chained = chained or bool(asks)
                if chained and not response_id:
                    # As any failure: what ran is kept (local history) and named, so nobody runs
                    # it again blindly. The answers of this round have no response to go to.
                    yield TurnFailed(
                        message=NO_ANSWER_ID + ran_note(ran),
                        retryable=True,
                        state=after_failure(outgoing),
                        usage=usage,
                        model=model,
                    )
                    return
                previous = response_id if chained else None
                request.resume.position = {**position([], []), "previous": previous}
                if self._tools is not None:  # a restart goes on from here
                    await self._tools.keep_position(request)
                round_number += 1
                request.cut.state = after_failure(send)  # what a shutdown from here on keeps
        except asyncio.CancelledError:
            if not stopped_here(request.stop):
                raise
            # Stopped by a person: the words shown become the (cut) answer; tools that ran stay.
            cut = cut_answer(result.text if streaming else "")
            if local:
                items, outputs = ([], []) if streaming else open_calls(calls, kept, started)
                rounds = [*kept[1:], *items, *outputs, *cut]
                saved = keep(history + [stored_user, *rounds], None, []) if rounds else state
            else:
                carried, last = server_carry(
                    result, streaming, send, previous, asked, open_calls(calls, kept, started)[1]
                )
                swap = {id(user_item): stored_user}
                carried = [swap.get(id(i), i) for i in carried if i is not images_item]
                saved = replace(keep([], last, []), history=tuple([*carried, *cut]))
            yield TurnCompleted(
                state=saved,
                usage=usage + result.cost if streaming else usage,
                model=model,
                stopped_by=request.stop.by,
            )
            return
        yield TurnCompleted(
            state=keep(history + [stored_user, *kept[1:]], final_id, pending),
            usage=usage,
            model=model,
        )

    async def _run_call(
        self, call: ToolCall, request: TurnRequest, resumed: Resumable | None
    ) -> AsyncIterator[TurnEvent]:
        if self._tools is not None:
            async for event in self._tools.run(call, request, resumed=resumed):
                yield event
            return
        # No executor: the call still needs an answer, or the server's response stays pending.
        yield unknown_tool(call)
