"""Voice messages and audio files as words: the transcript's value type, the caps and the line
that shows what was heard. The request itself is bot/backends/transcription.py's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.core.events import Usage

HEARD_MAX_CHARS = 200
HEARD_ICON = "🎙️"
VOICE_OFF = "Voice messages are not set up here: type your question instead."


@dataclass(frozen=True, kw_only=True)
class Heard:
    """One transcription: its text and what it cost. `usage` holds tokens for models billed by
    token; `seconds` the audio's length for models billed by the second (whisper-1)."""

    text: str
    model: str
    usage: Usage
    seconds: float | None
    cost_usd: float | None  # None: litellm's map has no price for the model
    duration_s: float  # how long the request took


# (llm config, file name, the audio's bytes, its content type) -> what was heard; the config is
# passed at each call so a reload's new model and keys apply to the next voice message.
Transcribe = Callable[[Any, str, bytes, str | None], Awaitable[Heard]]


@dataclass(frozen=True)
class AudioCaps:
    max_s: float
    max_bytes: int


def over_cap(size: int, duration_s: float | None, caps: AudioCaps) -> str | None:
    """Why an audio file is not transcribed, or None. The length counts only when Discord gave
    one (a voice message's `duration_secs`); a plain audio file is bounded by its size."""
    if size > caps.max_bytes:
        return f"over the {_size(caps.max_bytes)} audio limit"
    if duration_s is not None and duration_s > caps.max_s:
        return f"longer than the {caps.max_s:g} s audio limit"
    return None


def heard_text(transcript: str) -> str:
    """What the small line a voice message's answer starts with (`-# 🎙️ <this>`) shows: one
    line whatever was said, cut at HEARD_MAX_CHARS (the whole transcript is the question)."""
    words = " ".join(transcript.split())
    if len(words) > HEARD_MAX_CHARS:
        words = words[: HEARD_MAX_CHARS - 1].rstrip() + "…"
    return f'"{words}"'


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB" if n >= 1024 * 1024 else f"{n // 1024} KB"
