"""Small pure pieces: the reply transcript, per-user limits."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.config import LimitsConfig
from bot.core.events import (
    Notice,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    ToolProgress,
    TurnFailed,
)
from bot.core.limits import Reservation, UserLimits
from bot.discord.streaming.transcript import Transcript
from bot.discord.threads import _clean_title


def test_transcript_interleaves_text_and_tool_lines_in_order() -> None:
    transcript = Transcript()
    for event in (
        TextDelta(text="Let me check."),
        ToolCallStarted(call_id="a", server="time", tool="now"),
        ToolCallFinished(call_id="a", server="time", tool="now", outcome="done", output="12:00"),
        TextDelta(text="It is noon."),
        Notice(text="fresh start"),
        TurnFailed(message="Lost the connection."),
    ):
        transcript.apply(event)
    assert transcript.render() == (
        "Let me check.\n-# ✅ `time.now` done\nIt is noon.\n-# ℹ️ fresh start\n⚠️ Lost the connection."
    )
    assert transcript.render(start=2) == "It is noon.\n-# ℹ️ fresh start\n⚠️ Lost the connection."


def test_a_repeated_progress_report_changes_nothing_shown() -> None:
    """The renderer gives a write back when nothing changed; that needs an honest answer."""
    transcript = Transcript()
    transcript.apply(ToolCallStarted(call_id="a", server="s", tool="slow"))
    same = ToolProgress(call_id="a", progress=1, total=3, message="working")
    assert transcript.apply(same) is True
    assert transcript.apply(same) is False
    assert transcript.apply(ToolProgress(call_id="a", progress=2, total=3, message="working"))


async def test_user_limits_count_concurrency_rate_and_tokens() -> None:
    now = [0.0]
    used = {1: 0}

    async def tokens_since(user_id: int, since: datetime) -> int:
        return used.get(user_id, 0)

    limits = UserLimits(
        LimitsConfig(user_concurrent_turns=1, user_turns_per_minute=2, user_daily_tokens=100),
        tokens_since=tokens_since,
        clock=lambda: now[0],
    )
    first = limits.reserve(1)
    assert isinstance(first, Reservation)
    with first:
        # Counted at once: the next message of the same user is refused before any await.
        assert "still working" in str(limits.reserve(1))
        other = limits.reserve(2)
        assert isinstance(other, Reservation)
        other.release()
        other.release()  # twice is harmless
    with limits.reserve(1) as second:  # type: ignore[union-attr]
        assert isinstance(second, Reservation)
    assert "faster" in str(limits.reserve(1))
    now[0] = 61.0
    assert await limits.daily_refusal(1) is None
    third = limits.reserve(1)
    assert isinstance(third, Reservation)
    third.release()
    used[1] = 100
    assert "allowance" in (await limits.daily_refusal(1) or "")


def test_mcp_call_error_words_from_every_shape() -> None:
    from bot.backends.responses_events import mcp_error_text

    assert mcp_error_text(None) == ""
    assert mcp_error_text("boom") == "boom"
    assert mcp_error_text({"type": "mcp_protocol_error", "code": -32602, "message": "bad"}) == "bad"
    assert mcp_error_text({"type": "http_error", "code": 502, "message": ""}) == "http_error 502"
    execution = {
        "type": "mcp_tool_execution_error",
        "content": [{"type": "text", "text": "disk full"}, {"type": "image", "data": "..."}],
    }
    assert mcp_error_text(execution) == "disk full"


def test_model_info_reads_litellms_map_without_importing_it() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from bot.backends.model_info import model_info; "
        "info = model_info('openai/gpt-4o-mini'); "
        "print(info.max_input_tokens, 'litellm' in sys.modules, model_info('nobody/knows-me'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    window, imported, unknown = out.stdout.split()
    assert int(window) >= 100_000 and imported == "False" and unknown == "None"


def test_cost_counts_cached_input_at_its_own_rate() -> None:
    from bot.backends.model_info import ModelInfo

    info = ModelInfo(
        1000,
        input_cost_per_token=2e-6,
        output_cost_per_token=8e-6,
        cached_input_cost_per_token=0.5e-6,
    )
    cost = info.cost_usd(input_tokens=1000, cached_tokens=400, output_tokens=100)
    assert cost == pytest.approx(600 * 2e-6 + 400 * 0.5e-6 + 100 * 8e-6)
    assert (
        ModelInfo(None, None, None, None).cost_usd(input_tokens=1, cached_tokens=0, output_tokens=1)
        is None
    )


def test_nan_in_tool_arguments_is_a_problem_the_model_can_fix() -> None:
    from bot.core.tool_calls import parse_arguments

    assert parse_arguments('{"x": 1.5}') == ({"x": 1.5}, None)
    for raw in ('{"x": NaN}', '{"x": -Infinity}'):
        arguments, problem = parse_arguments(raw)
        assert arguments == {} and problem and "not valid JSON" in problem


def test_a_generated_thread_title_is_the_first_line_unquoted_or_nothing() -> None:
    assert _clean_title('"Deploy Failure Triage."\n') == "Deploy Failure Triage"
    assert _clean_title("**Fixing the CI Runner**\nextra words") == "Fixing the CI Runner"
    assert _clean_title("   ") is None
    # An answer instead of a title keeps the first words the thread was created with.
    assert (
        _clean_title("The build failed because the disk on the runner was full again today") is None
    )
    assert len(_clean_title("x" * 300) or "") == 90
