"""The `responses` backend: OpenAI Responses API with bot-side tools and server-side MCP servers."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import openai

from bot.backends.base import system_prompt, user_field
from bot.backends.failures import StreamCut, sleep_before_retry
from bot.backends.history import trim_history, user_content
from bot.backends.responses_events import (
    ApprovalAsk,
    Round,
    failure_of,
    json_object,
    mcp_tool,
    missing_previous,
)
from bot.config import LLMConfig, MCPServerConfig
from bot.core.approvals import ApprovalRequest
from bot.core.events import (
    ApprovalResolved,
    Attachment,
    Notice,
    ToolCallFinished,
    ToolImages,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    Usage,
)
from bot.core.state import ConversationState, TurnRequest
from bot.core.tool_calls import ToolCall, ToolExecutor, ask_approval, unknown_tool
from bot.core.tool_updates import images_message

log = logging.getLogger(__name__)

MAX_RETRIES = 3
FRESH_START = (
    "I couldn't find our earlier conversation on the model server, so this is a fresh start."
)
# A keyless local proxy still needs some key: the SDK refuses to build a client without one.
_PLACEHOLDER_KEY = "not-set"


@dataclass
class _Verdict:
    """An approval's outcome, handed out of the async generator that asked for it."""

    approved: bool = False
    reason: str | None = None  # a person's words when they denied with a reason


class ResponsesBackend:
    name = "responses"

    def __init__(
        self,
        llm: LLMConfig,
        *,
        tools: ToolExecutor | None,
        servers: dict[str, MCPServerConfig],
    ) -> None:
        self._llm = llm
        self._tools = tools
        self._server_tools = [
            mcp_tool(name, server) for name, server in servers.items() if server.server_side
        ]
        api_key = (
            llm.api_key.get_secret_value()
            if llm.api_key is not None
            else os.environ.get("OPENAI_API_KEY") or _PLACEHOLDER_KEY
        )
        self._client = openai.AsyncOpenAI(
            base_url=llm.base_url,
            api_key=api_key,
            timeout=llm.request_timeout_s,
            max_retries=0,  # retries are ours: we know whether text was already shown
        )

    async def aclose(self) -> None:
        await self._client.close()

    async def run_turn(
        self, state: ConversationState, request: TurnRequest
    ) -> AsyncIterator[TurnEvent]:
        llm = self._llm
        model = state.model or request.model or llm.model
        local = llm.state == "local"
        history = list(state.history) if local else []
        user_item = {
            "role": "user",
            "content": user_content(request.text, request.image_urls, responses=True),
        }
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
        send: list[dict[str, Any]] = [user_item]
        answered: set[str] = set()
        usage = Usage()
        final_id: str | None = None
        images_item: dict[str, Any] | None = None  # tools' images for the next request (vision)
        for round_number in range(llm.max_tool_rounds + 1):
            # The last round offers no tool calls, so the model has to answer in words.
            last_round = round_number == llm.max_tool_rounds
            items = send if chained else trim_history(history + kept, llm.max_history_messages)
            if images_item is not None and not chained:
                items = [*items, images_item]  # not kept: later turns see the text note only
            images_item = None
            kwargs = self._arguments(model, items, previous, tools, last_round)
            if user := user_field(request.user_id, llm.send_user_id):
                kwargs["user"] = user
            if request.system_prompt:
                kwargs["instructions"] = system_prompt(request.system_prompt)
            result = Round(answered=answered)
            # Only the id loaded from storage may be stale; ids from this turn are fresh.
            may_start_fresh = round_number == 0 and previous is not None
            async for event in self._stream(kwargs, result, may_start_fresh):
                yield event
                if isinstance(event, TurnFailed):
                    return
            usage = usage + result.usage
            final_id = result.response_id
            if result.text:
                kept.append({"role": "assistant", "content": result.text})
            calls = result.calls_to_run(own_tools)
            if not calls and not result.approvals:
                break
            if last_round:
                log.warning("model still asked for tools after %d rounds; stopping", round_number)
                break
            send = []
            images: list[Attachment] = []
            for call in calls:
                output = ""
                async for event in self._run_call(call, request):
                    yield event
                    if isinstance(event, ToolCallFinished):
                        output = event.output
                    elif isinstance(event, ToolImages) and llm.vision:
                        images += event.images
                answer = {"type": "function_call_output", "call_id": call.call_id, "output": output}
                kept += [_call_item(call), answer]
                send.append(answer)
            if images:
                images_item = images_message(images, responses=True)
                send.append(images_item)
            for ask in result.approvals:
                verdict = _Verdict()
                async for event in self._ask(ask, request, verdict):
                    yield event
                answered.add(ask.id)
                response = {
                    "type": "mcp_approval_response",
                    "approval_request_id": ask.id,
                    "approve": verdict.approved,
                }
                if verdict.reason:
                    response["reason"] = verdict.reason  # the model reads why, and adapts
                send.append(response)
            # The server holds the pending approval request, so its answer can only continue
            # that stored response, whatever llm.state says.
            chained = chained or bool(result.approvals)
            if chained and not result.response_id:
                yield TurnFailed(
                    message="The model service did not identify its answer, so the tool "
                    "results could not be sent back. Try again.",
                    retryable=True,
                )
                return
            previous = result.response_id if chained else None
        if local:
            stored = trim_history(history + kept, llm.max_history_messages)
            new_state = ConversationState(
                backend=self.name, history=tuple(stored), model=state.model
            )
        else:
            new_state = ConversationState(
                backend=self.name, previous_response_id=final_id, model=state.model
            )
        yield TurnCompleted(state=new_state, usage=usage, model=model)

    def _arguments(
        self,
        model: str,
        items: list[dict[str, Any]],
        previous: str | None,
        tools: list[dict[str, Any]],
        last_round: bool,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": model,
            # Sent every request: the API does not carry instructions over previous_response_id.
            "instructions": system_prompt(self._llm.system_prompt),
            "input": items,
            "stream": True,
            **self._llm.params,
        }
        if previous is not None:
            kwargs["previous_response_id"] = previous
        if tools:
            kwargs["tools"] = tools
            if last_round:
                kwargs["tool_choice"] = "none"
        return kwargs

    async def _stream(
        self, kwargs: dict[str, Any], result: Round, may_start_fresh: bool
    ) -> AsyncIterator[TurnEvent]:
        """One response with retries; retries stop once anything has been shown."""
        attempt = 0
        while True:
            shown = False
            stream: Any = None
            try:
                stream = await self._client.responses.create(**kwargs)
                async for event in stream:
                    for out in result.absorb(event):
                        shown = True
                        yield out
                if not result.completed:
                    raise StreamCut("stream ended without response.completed")
                return
            except Exception as exc:
                previous = kwargs.get("previous_response_id")
                if may_start_fresh and previous and missing_previous(exc, previous):
                    # Expired or unknown on the server: resend the user's message alone. The key
                    # is removed, so this happens at most once per turn.
                    log.info("previous response %s is gone; starting fresh", previous)
                    del kwargs["previous_response_id"]
                    result.reset()
                    yield Notice(text=FRESH_START)
                    continue
                failure = failure_of(exc)
                log.warning("responses request failed: %s: %s", type(exc).__name__, exc)
                if shown or not failure.retryable or attempt >= MAX_RETRIES:
                    yield TurnFailed(message=failure.message, retryable=failure.retryable)
                    return
                await sleep_before_retry(attempt, failure)
                attempt += 1
                result.reset()
            finally:
                if stream is not None:
                    await stream.close()

    async def _run_call(self, call: ToolCall, request: TurnRequest) -> AsyncIterator[TurnEvent]:
        if self._tools is not None:
            async for event in self._tools.run(call, request):
                yield event
            return
        # No executor: the call still needs an answer, or the server's response stays pending.
        yield unknown_tool(call)

    async def _ask(
        self, ask: ApprovalAsk, request: TurnRequest, verdict: _Verdict
    ) -> AsyncIterator[TurnEvent]:
        """Ask a human about a server-side MCP call; the answer lands in `verdict`."""
        if self._tools is None:
            # Nobody to ask, so the call is not run.
            yield ToolCallFinished(
                call_id=ask.id,
                server=ask.server,
                tool=ask.tool,
                outcome="denied",
                output="This tool call was not approved, so it was not run.",
            )
            return
        approval = ApprovalRequest(
            key=request.key,
            call_id=ask.id,
            server=ask.server,
            tool=ask.tool,
            arguments=json_object(ask.arguments),
            requester_id=request.user_id,
        )
        verdict.approved = True
        async for event in ask_approval(self._tools.gate, approval, shown_tool=ask.tool):
            if isinstance(event, ToolCallFinished):
                verdict.approved = False
            if isinstance(event, ApprovalResolved):
                verdict.reason = event.reason
            yield event


def _call_item(call: ToolCall) -> dict[str, Any]:
    """The model's function call as an input item, kept so local history pairs it with its output."""
    return {
        "type": "function_call",
        "call_id": call.call_id,
        "name": call.name,
        "arguments": call.arguments,
    }
