"""Images a tool returns reach a vision model in the next request (both backends), else a note."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr

from bot.backends.chat import ChatBackend
from bot.backends.responses import ResponsesBackend
from bot.config import LLMConfig
from bot.core.approvals import ApprovalPolicy
from bot.core.events import TurnCompleted, TurnEvent
from bot.core.state import ConversationKey, ConversationState, TurnRequest
from bot.core.tool_calls import ToolExecutor
from tests.fakes.llm import ScriptedLLM, Text, ToolCall
from tests.module_llm import module_llm  # noqa: F401 (this module's `llm`)

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake-pixels").decode()


@dataclass(frozen=True)
class Spec:
    name: str = "pics__snap"
    server: str = "pics"
    tool: str = "snap"
    description: str = "takes a picture"
    input_schema: Any = None


@dataclass(frozen=True)
class Result:
    text: str = "[image image.png (image/png, 19 bytes) was shown to the user as an attachment]"
    is_error: bool = False
    images: tuple[tuple[str, str], ...] = (("image/png", PNG),)


class Box:
    def tools(self) -> list[Any]:
        return [Spec(input_schema={"type": "object", "properties": {}})]

    def find(self, name: str) -> Any:
        return Spec(input_schema={}) if name == "pics__snap" else None

    async def call(self, name: str, arguments: dict[str, Any], **_: Any) -> Result:
        return Result()


class NoGate:
    async def preapproved(self, key: Any, tool: str) -> bool:
        return True


def image_urls(body: dict[str, Any]) -> list[str]:
    found = []
    for item in body.get("messages") or body.get("input") or []:
        content = item.get("content") if isinstance(item, dict) else None
        for part in content if isinstance(content, list) else []:
            if part.get("type") == "image_url":
                found.append(part["image_url"]["url"])
            elif part.get("type") == "input_image":
                found.append(part["image_url"])
    return found


@pytest.mark.parametrize("backend", ["chat", "responses"])
@pytest.mark.parametrize("vision", [True, False])
async def test_tool_images_follow_llm_vision(llm: ScriptedLLM, backend: str, vision: bool) -> None:
    key = f"k-toolimg-{backend}-{vision}"
    llm.clear()
    llm.script(key, [ToolCall("pics__snap", {})], Text("A nice picture."), Text("Later."))
    config = LLMConfig(
        backend=backend,  # type: ignore[arg-type]
        model="openai/test-model" if backend == "chat" else "test-model",
        base_url=llm.base_url,
        api_key=SecretStr("sk-test"),
        vision=vision,
    )
    executor = ToolExecutor(Box(), {"pics": ApprovalPolicy("never")}, NoGate())  # type: ignore[arg-type]
    runner: Any = (
        ChatBackend(config, tools=executor)
        if backend == "chat"
        else ResponsesBackend(config, tools=executor, servers={})
    )
    request = TurnRequest(
        key=ConversationKey(guild_id=1, channel_id=2, user_id=3),
        user_id=3,
        user_name="u",
        text=f"{key} take a picture",
    )
    events: list[TurnEvent] = [
        e async for e in runner.run_turn(ConversationState(backend=backend), request)
    ]
    done = events[-1]
    assert isinstance(done, TurnCompleted)
    # All requests, not the script key's: the chat fake keys on the last user text, which is
    # the images' message when they are sent.
    sent = list(llm.requests)
    expected = [f"data:image/png;base64,{PNG}"] if vision else []
    assert image_urls(sent[1].body) == expected
    assert "shown to the user" in str(sent[1].body)  # the note is there either way
    # The image is not stored with the conversation: a later turn carries only the note.
    later = TurnRequest(key=request.key, user_id=3, user_name="u", text=f"{key} and now?")
    async for _ in runner.run_turn(done.state, later):
        pass
    await runner.aclose()
    sent = list(llm.requests)
    assert "and now?" in str(sent[2].body) and image_urls(sent[2].body) == []


class BigBox(Box):
    """A tool whose text note is long, so the round after it overflows a small window."""

    async def call(self, name: str, arguments: dict[str, Any], **_: Any) -> Result:
        return Result(text="The camera logged: " + "click " * 270)


async def test_an_overflow_after_a_tool_image_keeps_calls_paired_and_stores_no_image(
    llm: ScriptedLLM,
) -> None:
    """state local + vision: the images message sent after a tool must not take part in the
    overflow repair, or the stored history loses a call (every later turn is refused) and
    keeps the image's bytes."""
    key = "k-toolimg-overflow"
    llm.clear()
    llm.script(
        key,
        Text("A long answer. " * 135),
        [ToolCall("pics__snap", {}, call_id="call_snap")],
        Text("A nice picture."),
        Text("Later."),
    )
    config = LLMConfig(
        backend="responses",
        model="test-model",
        base_url=llm.base_url,
        api_key=SecretStr("sk-test"),
        state="local",
        vision=True,
    )
    executor = ToolExecutor(BigBox(), {"pics": ApprovalPolicy("never")}, NoGate())  # type: ignore[arg-type]
    runner = ResponsesBackend(config, tools=executor, servers={})
    conversation = ConversationKey(guild_id=1, channel_id=2, user_id=3)

    async def turn(text: str, state: ConversationState) -> TurnEvent:
        request = TurnRequest(key=conversation, user_id=3, user_name="u", text=f"{key} {text}")
        events = [e async for e in runner.run_turn(state, request)]
        return events[-1]

    try:
        first = await turn("tell me a story", ConversationState(backend="responses"))
        assert isinstance(first, TurnCompleted)
        # The next turn's first request fits; the one after the tool (its note and image) not.
        llm.context_window(key, 800)
        second = await turn("take a picture", first.state)
        assert isinstance(second, TurnCompleted), second
        stored = second.state.history
        assert "data:image" not in json.dumps(stored)
        calls = [i["call_id"] for i in stored if i.get("type") == "function_call"]
        outputs = [i["call_id"] for i in stored if i.get("type") == "function_call_output"]
        assert calls == outputs == ["call_snap"]
        # The fake refuses a tool output without its call, as OpenAI does.
        third = await turn("and now?", second.state)
        assert isinstance(third, TurnCompleted), third
    finally:
        await runner.aclose()
    last = llm.requests_for(key)[-1].body
    assert "and now?" in json.dumps(last) and "data:image" not in json.dumps(last)


def test_a_tool_file_past_the_cap_is_dropped_before_it_is_decoded_or_copied() -> None:
    """Tool images and blobs are capped like users' images (8 MB): a bigger one reaches neither
    the user nor a vision model, and the model reads why."""
    from mcp import types

    from bot.tools.mcp_content import MAX_TOOL_FILE_BYTES, split_result

    big = base64.b64encode(b"\x89PNG" + b"\0" * MAX_TOOL_FILE_BYTES).decode()
    small = base64.b64encode(b"\x89PNG tiny").decode()
    result = types.CallToolResult(
        content=[
            types.ImageContent(type="image", data=big, mimeType="image/png"),
            types.EmbeddedResource(
                type="resource",
                resource=types.BlobResourceContents(
                    uri="file:///huge.bin", blob=big, mimeType="application/octet-stream"
                ),
            ),
            types.ImageContent(type="image", data=small, mimeType="image/png"),
        ]
    )
    split = split_result(result, "srv__draw")
    assert [f.data for f in split.attachments] == [b"\x89PNG tiny"]
    assert split.images == (("image/png", small),)
    assert split.text.count("larger than the 8 MB the bot passes on; dropped") == 2
