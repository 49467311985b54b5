"""MCPTools against the official `server-everything`: content types, progress, sampling, logs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import mcp_types as types
import pytest

from bot.config import MCPServerConfig
from bot.tools.mcp import MCPTools, Sampled
from tests.fakes.everything import everything_params

PNG = b"\x89PNG\r\n\x1a\n"


def everything(**extra: Any) -> dict[str, MCPServerConfig]:
    return {"everything": MCPServerConfig(**everything_params(), **extra)}


class Updates:
    """Records what a call reports while it runs; answers sampling approvals with `approve`."""

    def __init__(self, approve: bool = True) -> None:
        self.approve = approve
        self.progress_seen: list[tuple[float, float | None, str | None]] = []
        self.asked: list[tuple[str, dict[str, Any]]] = []
        self.usage: list[tuple[str, int, int]] = []

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.progress_seen.append((progress, total, message))

    async def approve_sampling(self, server: str, summary: dict[str, Any]) -> str | None:
        self.asked.append((server, summary))
        return None if self.approve else "The user declined the request."

    def sampled(self, model: str, input_tokens: int, output_tokens: int) -> None:
        self.usage.append((model, input_tokens, output_tokens))

    async def sampling_refusal(self) -> str | None:
        return None  # no daily allowance in these tests

    async def elicit(
        self, server: str, message: str, schema: dict[str, Any] | None, url: str | None
    ) -> tuple[str, dict[str, Any] | None]:
        self.asked.append((server, {"message": message, "schema": schema, "url": url}))
        if not self.approve:
            return "decline", None
        return "accept", {"name": "Grace", "integer": 9}


async def fake_sampler(params: types.CreateMessageRequestParams) -> Sampled:
    (message,) = params.messages
    assert isinstance(message.content, types.TextContent)
    return Sampled(
        text=f"sampled<{message.content.text}>", model="m-1", input_tokens=7, output_tokens=3
    )


async def test_image_becomes_an_attachment_and_a_note() -> None:
    async with MCPTools(everything()) as mcp:
        result = await mcp.call("everything__get-tiny-image", {})
    assert not result.is_error
    (png,) = result.attachments
    assert png.content_type == "image/png" and png.data.startswith(PNG)
    assert png.filename.endswith(".png")
    assert "Here's the image you requested" in result.text
    assert f"image {png.filename} (image/png" in result.text
    assert "iVBOR" not in result.text  # no base64 for the model


async def test_embedded_resources_text_inline_blob_attached() -> None:
    async with MCPTools(everything()) as mcp:
        text = await mcp.call("everything__get-resource-reference", {"resourceType": "Text"})
        blob = await mcp.call(
            "everything__get-resource-reference", {"resourceType": "Blob", "resourceId": 2}
        )
    assert "This is a plaintext resource" in text.text and not text.attachments
    (file,) = blob.attachments
    assert file.data.startswith(b"Resource 2: This is a base64 blob")
    assert "was attached for the user" in blob.text and "base64 blob created" not in blob.text


async def test_resource_links_are_listed_and_readable() -> None:
    async with MCPTools(everything()) as mcp:
        links = await mcp.call("everything__get-resource-links", {"count": 2})
        assert "[resource link: Blob Resource 1 <" in links.text
        uri = links.text.split("Text Resource 2 <", 1)[1].split(">", 1)[0]
        read = mcp.find("everything__read_resource")
        assert read is not None and read.input_schema["required"] == ["uri"]
        result = await mcp.call("everything__read_resource", {"uri": uri})
    assert "Resource 2: This is a plaintext resource" in result.text


async def test_structured_content_and_user_audience() -> None:
    async with MCPTools(everything()) as mcp:
        structured = await mcp.call("everything__get-structured-content", {"location": "Chicago"})
        annotated = await mcp.call(
            "everything__get-annotated-message", {"messageType": "success", "includeImage": True}
        )
    assert "temperature" in structured.text
    # Meant for the user only: shown in Discord, not sent to the model.
    assert annotated.user_notes and not any(n in annotated.text for n in annotated.user_notes)
    assert annotated.attachments


async def test_progress_notifications_reach_the_caller() -> None:
    updates = Updates()
    async with MCPTools(everything()) as mcp:
        result = await mcp.call(
            "everything__trigger-long-running-operation",
            {"duration": 0.6, "steps": 3},
            updates=updates,
        )
    assert "Long running operation completed" in result.text
    assert [(p, t) for p, t, _ in updates.progress_seen] == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("policy", ["allow", "ask"])
async def test_sampling_answered_by_the_bots_model(policy: str) -> None:
    updates = Updates(approve=True)
    async with MCPTools(everything(), sampling=policy, sampler=fake_sampler) as mcp:  # type: ignore[arg-type]
        result = await mcp.call(
            "everything__trigger-sampling-request",
            {"prompt": "write a haiku", "maxTokens": 50},
            updates=updates,
        )
    assert not result.is_error, result.text
    assert "sampled<Resource trigger-sampling-request context: write a haiku>" in result.text
    assert updates.usage == [("m-1", 7, 3)]
    if policy == "ask":
        ((server, summary),) = updates.asked
        assert server == "everything" and summary["max_tokens"] == 50
        assert "write a haiku" in summary["messages"][0]
    else:
        assert updates.asked == []


async def test_sampling_denied_by_user_or_policy() -> None:
    declined = Updates(approve=False)
    async with MCPTools(everything(), sampling="ask", sampler=fake_sampler) as mcp:
        result = await mcp.call(
            "everything__trigger-sampling-request", {"prompt": "p"}, updates=declined
        )
    assert result.is_error and "declined" in result.text and declined.usage == []
    async with MCPTools(everything(), sampling="deny", sampler=fake_sampler) as mcp:
        result = await mcp.call("everything__trigger-sampling-request", {"prompt": "p"})
    assert result.is_error and "mcp.sampling: deny" in result.text


async def test_server_log_messages_go_to_the_bot_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.tools.mcp.server")
    async with MCPTools(everything()) as mcp:
        await mcp.call("everything__toggle-simulated-logging", {})
        for _ in range(100):
            if any(r.name == "bot.tools.mcp.server" for r in caplog.records):
                break
            await asyncio.sleep(0.1)
        await mcp.call("everything__toggle-simulated-logging", {})
    records = [r for r in caplog.records if r.name == "bot.tools.mcp.server"]
    assert records and all(r.getMessage().startswith("[everything] ") for r in records)


async def test_status_lists_prompts_and_sampling() -> None:
    async with MCPTools(everything(), sampling="ask", sampler=fake_sampler) as mcp:
        (status,) = mcp.status()
    assert "args-prompt" in status.prompts and status.sampling == "ask"


async def test_prompts_fetch_and_complete() -> None:
    async with MCPTools(everything()) as mcp:
        args = mcp.find_prompt("everything/args-prompt")
        assert args is not None and args.required == ["city"]
        assert await mcp.get_prompt(args, {"city": "Paris"}) == "What's weather in Paris?"
        completable = mcp.find_prompt("everything/completable-prompt")
        assert completable is not None
        assert "Engineering" in await mcp.complete_prompt(completable, "department", "Eng", {})


async def test_elicitation_is_advertised_and_answered_through_the_caller() -> None:
    async with MCPTools(everything()) as mcp:
        assert mcp.find("everything__trigger-elicitation-request") is None  # not advertised
    updates = Updates()
    async with MCPTools(everything(), elicitation=True) as mcp:
        result = await mcp.call("everything__trigger-elicitation-request", {}, updates=updates)
    ((server, asked),) = updates.asked
    assert server == "everything" and asked["schema"]["required"] == ["name"]
    assert "- Name: Grace" in result.text and "- Favorite Integer: 9" in result.text
