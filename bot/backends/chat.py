"""The `chat` backend: litellm chat completions (any provider) with an in-process tool loop."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from bot.backends.base import system_prompt, user_field
from bot.backends.failures import StreamCut, classify, sleep_before_retry
from bot.backends.history import trim_history, user_content
from bot.config import LLMConfig
from bot.core.events import (
    Attachment,
    TextDelta,
    ToolCallFinished,
    ToolImages,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    Usage,
)
from bot.core.state import ConversationState, TurnRequest
from bot.core.tool_calls import ToolCall, ToolExecutor
from bot.core.tool_updates import images_message

log = logging.getLogger(__name__)

MAX_RETRIES = 3


def import_litellm() -> Any:
    # Offline, litellm stalls ~15 s at import fetching a price list unless told to use its copy.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


@dataclass
class _Round:
    """What one streamed completion produced."""

    text: str = ""
    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    finished: bool = False

    def reset(self) -> None:
        self.text, self.calls, self.usage, self.finished = "", {}, Usage(), False

    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(call_id=c["id"], name=c["name"], arguments=c["arguments"])
            for _, c in sorted(self.calls.items())
        ]

    def assistant_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.calls:
            message["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for _, c in sorted(self.calls.items())
            ]
        return message


class ChatBackend:
    name = "chat"

    def __init__(self, llm: LLMConfig, *, tools: ToolExecutor | None = None) -> None:
        self._llm = llm
        self._tools = tools
        self._litellm = import_litellm()

    async def aclose(self) -> None:
        return None

    async def run_turn(
        self, state: ConversationState, request: TurnRequest
    ) -> AsyncIterator[TurnEvent]:
        model = state.model or request.model or self._llm.model
        history = list(state.history)
        new: list[dict[str, Any]] = [
            {
                "role": "user",
                "content": user_content(request.text, request.image_urls, responses=False),
            }
        ]
        usage = Usage()
        tools = self._tools.chat_tools() if self._tools else []
        images: list[Attachment] = []  # tools' images, for the next request only (vision)
        for round_number in range(self._llm.max_tool_rounds + 1):
            messages = [
                {
                    "role": "system",
                    "content": system_prompt(request.system_prompt or self._llm.system_prompt),
                },
                *trim_history(history + new, self._llm.max_history_messages),
            ]
            if images:  # not stored: later turns keep the tool's text note only
                messages.append(images_message(images, responses=False))
                images = []
            # The last round offers no tool calls, so the model has to answer in words.
            last_round = round_number == self._llm.max_tool_rounds
            result = _Round()
            user = user_field(request.user_id, self._llm.send_user_id)
            async for event in self._stream(model, messages, tools, last_round, result, user):
                yield event
                if isinstance(event, TurnFailed):
                    return
            usage = usage + result.usage
            new.append(result.assistant_message())
            if not result.calls or self._tools is None:
                break
            for call in result.tool_calls():
                async for event in self._tools.run(call, request):
                    yield event
                    if isinstance(event, ToolCallFinished):
                        new.append(
                            {"role": "tool", "tool_call_id": call.call_id, "content": event.output}
                        )
                    elif isinstance(event, ToolImages) and self._llm.vision:
                        images += event.images
        stored = trim_history(history + new, self._llm.max_history_messages)
        yield TurnCompleted(
            state=ConversationState(backend=self.name, history=tuple(stored), model=state.model),
            usage=usage,
            model=model,
        )

    async def _stream(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        last_round: bool,
        result: _Round,
        user: str | None = None,
    ) -> AsyncIterator[TurnEvent]:
        """One completion with retries; retries stop once any text has been shown."""
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "timeout": self._llm.request_timeout_s,
            "max_retries": 0,  # retries are ours: we know whether text was already shown
            **self._llm.params,
        }
        if user:
            kwargs["user"] = user
            if model.startswith("openai/"):
                # litellm drops `user` for model names outside OpenAI's catalog, i.e. exactly
                # the OpenAI-compatible servers (a LiteLLM proxy) whose budgets key on it.
                kwargs["allowed_openai_params"] = ["user"]
        if self._llm.base_url:
            kwargs["api_base"] = self._llm.base_url
        if self._llm.api_key is not None:
            kwargs["api_key"] = self._llm.api_key.get_secret_value()
        if tools:
            kwargs["tools"] = tools
            if last_round:
                kwargs["tool_choice"] = "none"
        attempt = 0
        while True:
            shown = False
            try:
                stream = await self._litellm.acompletion(**kwargs)
                async for chunk in stream:
                    text = _absorb(chunk, result)
                    if text:
                        shown = True
                        yield TextDelta(text=text)
                if not result.finished:
                    raise StreamCut("stream ended without a finish reason")
                return
            except Exception as exc:
                failure = classify(exc)
                log.warning("chat completion failed: %s: %s", type(exc).__name__, exc)
                if shown or not failure.retryable or attempt >= MAX_RETRIES:
                    yield TurnFailed(message=failure.message, retryable=failure.retryable)
                    return
                await sleep_before_retry(attempt, failure)
                attempt += 1
                result.reset()


def _absorb(chunk: Any, result: _Round) -> str:
    """Fold one streamed chunk into `result`; return its text."""
    usage = getattr(chunk, "usage", None)
    if usage:
        result.usage = Usage(
            input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            output_tokens=getattr(usage, "completion_tokens", 0) or 0,
            cached_input_tokens=getattr(
                getattr(usage, "prompt_tokens_details", None), "cached_tokens", 0
            )
            or 0,
        )
    if not chunk.choices:
        return ""
    choice = chunk.choices[0]
    if choice.finish_reason:
        result.finished = True
    delta = choice.delta
    for call in getattr(delta, "tool_calls", None) or []:
        index = call.index if call.index is not None else len(result.calls)
        entry = result.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        if call.id:
            entry["id"] = call.id
        function = call.function
        if function is not None:
            if function.name:
                entry["name"] = function.name
            if function.arguments:
                entry["arguments"] += function.arguments
    for entry in result.calls.values():
        if not entry["id"]:
            # The backend promises stable call ids: approvals and the database key on them.
            entry["id"] = f"call_{uuid.uuid4().hex[:24]}"
    text = getattr(delta, "content", None) or ""
    result.text += text
    return text
