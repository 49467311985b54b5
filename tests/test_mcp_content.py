"""What a tool result becomes: text for the model (capped), files and notes for the user."""

from __future__ import annotations

import base64

import mcp_types as types

from bot.tools.mcp_content import split_result

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28)


def result(*content: types.ContentBlock) -> types.CallToolResult:
    return types.CallToolResult(content=list(content))


def test_audio_is_attached_and_the_model_gets_a_note() -> None:
    audio = types.AudioContent(
        type="audio", data=base64.b64encode(WAV).decode(), mime_type="audio/wav"
    )
    split = split_result(result(types.TextContent(type="text", text="Listen."), audio), "beep")
    (file,) = split.attachments
    assert file.data == WAV and file.content_type == "audio/wav"
    assert f"[audio {file.filename} (audio/wav, " in split.text and "attachment" in split.text
    assert base64.b64encode(WAV).decode()[:16] not in split.text
    assert split.images == ()  # only images go to a vision model


def test_an_embedded_text_resource_reaches_the_model_capped_at_8000_characters() -> None:
    def embedded(text: str) -> types.EmbeddedResource:
        contents = types.TextResourceContents(uri="file:///notes.txt", text=text)
        return types.EmbeddedResource(type="resource", resource=contents)

    whole = "w" * 8_000
    assert split_result(result(embedded(whole)), "read").text.endswith(whole)
    long = "a" * 8_000 + "b" * 12_000
    text = split_result(result(embedded(long)), "read").text
    assert "a" * 8_000 in text and "b" not in text
    assert "showing 8000 of 20000 characters" in text
