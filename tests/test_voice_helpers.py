"""The pure parts of voice messages: caps, the heard line, which files are audio, the price."""

from __future__ import annotations

import pytest

from bot.backends.transcription import transcription_cost
from bot.core.attachments import kind_of
from bot.core.events import Usage
from bot.core.voice import HEARD_MAX_CHARS, AudioCaps, heard_text, over_cap

CAPS = AudioCaps(max_s=300, max_bytes=8_388_608)


def test_caps_count_bytes_always_and_seconds_when_discord_gives_them() -> None:
    assert over_cap(8_388_608, 300, CAPS) is None  # at the caps is within them
    assert over_cap(8_388_609, 10, CAPS) == "over the 8 MB audio limit"
    assert over_cap(1000, 300.5, CAPS) == "longer than the 300 s audio limit"
    assert over_cap(1000, None, CAPS) is None  # a plain audio file: no duration_secs
    assert over_cap(5000, 1, AudioCaps(max_s=60, max_bytes=4096)) == "over the 4 KB audio limit"


def test_the_heard_line_is_one_line_cut_at_200_characters() -> None:
    assert heard_text("  hello\n  there ") == '"hello there"'
    long = heard_text("x" * 500)
    assert len(long) == HEARD_MAX_CHARS + 2 and long.endswith('…"')
    exact = "y" * HEARD_MAX_CHARS
    assert heard_text(exact) == f'"{exact}"'  # 200 fit: nothing is cut


@pytest.mark.parametrize(
    ("name", "ctype", "kind"),
    [
        ("voice-message.ogg", "audio/ogg", "audio"),
        ("memo.mp3", "audio/mpeg", "audio"),
        ("memo.m4a", None, "audio"),
        ("clip.webm", "audio/webm", "audio"),
        ("clip.webm", "video/webm", "other"),
        ("clip.ogg", "video/ogg", "other"),
        ("notes.txt", "text/plain", "text"),
    ],
)
def test_audio_is_told_by_content_type_then_suffix(name: str, ctype: str, kind: str) -> None:
    assert kind_of(name, ctype) == kind


def test_transcriptions_are_priced_from_litellms_map() -> None:
    tokens = Usage(input_tokens=1000, output_tokens=50)
    cost = transcription_cost("openai/gpt-4o-mini-transcribe", tokens, None)
    assert cost == pytest.approx(1000 * 1.25e-6 + 50 * 5e-6)
    assert transcription_cost("whisper-1", Usage(), 12.0) == pytest.approx(12e-4)
    assert transcription_cost("groq/whisper-large-v3", Usage(), 10.0) == pytest.approx(3.083e-4)
    assert transcription_cost("no-such-transcriber", tokens, None) is None
    assert transcription_cost("openai/gpt-4o-mini-transcribe", Usage(), None) is None
