"""What one streamed chat completion produced: its text, tool calls, thinking and usage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from bot.backends.failures import Failure
from bot.backends.sse import Fields
from bot.core.events import ReasoningDelta, TextDelta, TurnEvent, Usage
from bot.core.tool_calls import ToolCall


@dataclass
class ChatRound:
    """What one streamed completion produced."""

    text: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    by_index: dict[int, int] = field(default_factory=dict)  # stream index -> newest call there
    thinking: list[dict[str, Any]] = field(default_factory=list)
    refused: bool = False  # the text is the model's refusal (`delta.refusal`)
    usage: Usage = field(default_factory=Usage)
    spent: Usage = field(default_factory=Usage)  # earlier attempts that still cost tokens
    finish: str | None = None
    failure: Failure | None = None

    def reset(self) -> None:
        spent = self.spent + self.usage
        self.__dict__.update(ChatRound(spent=spent).__dict__)

    @property
    def cost(self) -> Usage:
        return self.spent + self.usage

    def add_call_fragment(self, call: Any) -> None:
        """Join one streamed tool-call fragment, keyed by id as well as index.

        Some providers repeat `index: 0` for parallel calls: a new id at a used index starts a
        new call. Fragments without an id join the call open at their index, or the newest call.
        """
        index, call_id = getattr(call, "index", None), getattr(call, "id", None) or ""
        entry = next((c for c in self.calls if call_id and c["id"] == call_id), None)
        if entry is None:
            at = self.calls[self.by_index[index]] if index in self.by_index else None
            if at is not None and (not call_id or not at["id"]):
                entry = at
            elif at is None and not call_id and index is None and self.calls:
                entry = self.calls[-1]
            else:
                entry = {"id": "", "name": "", "arguments": ""}
                self.calls.append(entry)
        if call_id:
            entry["id"] = call_id
        fields = getattr(call, "provider_specific_fields", None)
        if fields:
            # Gemini's thought signature (via litellm): refused later if not sent back with the call.
            entry["provider_specific_fields"] = dict(fields)
        if index is not None:
            self.by_index[index] = next(n for n, c in enumerate(self.calls) if c is entry)
        function = getattr(call, "function", None)
        if function is not None:
            if function.name and not entry["name"]:
                entry["name"] = function.name
            if function.arguments:
                entry["arguments"] += function.arguments

    def add_thinking(self, block: Any) -> None:
        """Anthropic thinking blocks arrive in pieces, the signature last; keep them whole."""
        block = dict(block) if not isinstance(block, dict) else block
        if block.get("type") != "thinking":
            self.thinking.append(dict(block))  # redacted_thinking: passed back as it came
            return
        last = self.thinking[-1] if self.thinking else None
        if last is None or last.get("type") != "thinking" or last.get("signature"):
            last = {"type": "thinking", "thinking": ""}
            self.thinking.append(last)
        last["thinking"] += block.get("thinking") or ""
        if block.get("signature"):
            last["signature"] = block["signature"]

    def finalize(self) -> None:
        for entry in self.calls:
            if not entry["id"]:
                # The backend promises stable call ids: approvals and the database key on them.
                entry["id"] = f"call_{uuid.uuid4().hex[:24]}"

    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(call_id=c["id"], name=c["name"], arguments=c["arguments"]) for c in self.calls
        ]

    def assistant_message(self) -> dict[str, Any] | None:
        """The round as history; None for an empty answer (null content is refused later)."""
        if not self.text and not self.calls:
            return None
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.calls:
            message["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                    **(
                        {"provider_specific_fields": c["provider_specific_fields"]}
                        if "provider_specific_fields" in c
                        else {}
                    ),
                }
                for c in self.calls
            ]
            if self.thinking:
                # Anthropic extended thinking refuses tool results without the thinking before.
                message["thinking_blocks"] = self.thinking
        return message


# The delta fields of a chunk that carries only text: most chunks of most answers.
_PLAIN_DELTA = frozenset({"content", "role"})


def absorb(chunk: Any, result: ChatRound) -> list[TurnEvent]:
    """Fold one streamed chunk into `result`; return what to show."""
    if type(chunk) is Fields:
        plain = _plain_text(chunk, result)
        if plain is not None:
            return plain
    usage = getattr(chunk, "usage", None)
    if usage:
        result.usage = usage_of(usage)
    if not chunk.choices:
        return []
    choice = chunk.choices[0]
    if choice.finish_reason:
        result.finish = choice.finish_reason
    delta = choice.delta
    if delta is None:
        return []
    events: list[TurnEvent] = []
    reasoning = getattr(delta, "reasoning_content", None)
    if reasoning:
        events.append(ReasoningDelta(text=reasoning))
    for block in getattr(delta, "thinking_blocks", None) or []:
        result.add_thinking(block)
    for call in getattr(delta, "tool_calls", None) or []:
        result.add_call_fragment(call)
    # A refusal is the answer, shown and stored as one (the turn marks it as a refusal).
    refusal = getattr(delta, "refusal", None) or ""
    result.refused = result.refused or bool(refusal)
    text = (getattr(delta, "content", None) or "") + refusal
    if text:
        result.text += text
        events.append(TextDelta(text=text))
    return events


def _plain_text(chunk: dict[str, Any], result: ChatRound) -> list[TurnEvent] | None:
    """A text-only chunk from the lean reader folded straight from its dicts (a view per field
    read was a tenth of the bot's CPU in the bench's s4); None: anything else, read in full."""
    choices = chunk.get("choices")
    if chunk.get("usage") or not choices or len(choices) != 1:
        return None
    choice = choices[0]
    delta = choice.get("delta")
    if choice.get("finish_reason") or type(delta) is not dict or not delta.keys() <= _PLAIN_DELTA:
        return None
    text = delta.get("content")
    if not text:
        return []
    result.text += text
    return [TextDelta(text=text)]


def usage_of(usage: Any) -> Usage:
    prompt = getattr(usage, "prompt_tokens_details", None)
    completion = getattr(usage, "completion_tokens_details", None)
    cached = getattr(prompt, "cached_tokens", None) or getattr(usage, "cache_read_input_tokens", 0)
    # Anthropic's cache writes, as litellm (and its proxy) report them.
    written = getattr(usage, "cache_creation_input_tokens", None) or getattr(
        prompt, "cache_write_tokens", 0
    )
    return Usage(
        input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        output_tokens=getattr(usage, "completion_tokens", 0) or 0,
        cached_input_tokens=cached or 0,
        reasoning_tokens=getattr(completion, "reasoning_tokens", 0) or 0,
        cache_write_tokens=written if isinstance(written, int) else 0,
    )
