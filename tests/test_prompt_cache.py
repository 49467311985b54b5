"""Where prompt caching is sent under `auto`, `on` and `off`, and where the breakpoints go."""

from __future__ import annotations

import pytest

from bot.backends.prompt_cache import keys_cache, marks_cache, with_breakpoints

CLAUDE = "anthropic/claude-sonnet-4-5"


@pytest.mark.parametrize(
    ("setting", "model", "marked"),
    [
        ("auto", CLAUDE, True),
        ("auto", "bedrock/anthropic.claude-sonnet-4-6", True),
        ("auto", "openai/gpt-4o-mini", False),  # OpenAI caches by itself
        ("auto", "hosted_vllm/claude-sonnet-4-5", False),  # a server not known to take them
        ("auto", "litellm_proxy/claude-sonnet-4-5", False),  # `on` is for proxies
        ("on", "hosted_vllm/anything", True),
        ("off", CLAUDE, False),
    ],
)
def test_cache_breakpoints_go_where_they_are_taken(setting: str, model: str, marked: bool) -> None:
    assert marks_cache(setting, model) is marked


@pytest.mark.parametrize(
    ("setting", "model", "base_url", "chat", "keyed"),
    [
        ("auto", "openai/gpt-4o-mini", None, True, True),
        ("auto", "openai/gpt-4o-mini", "https://api.openai.com/v1", True, True),
        ("auto", "openai/gpt-4o-mini", "http://localhost:4000", True, False),
        ("auto", "gpt-4o-mini", None, False, True),
        ("auto", "gpt-4o-mini", "http://localhost:4000", False, False),
        ("on", "gpt-4o-mini", "http://localhost:4000", False, True),
        ("on", "litellm_proxy/claude-sonnet-4-5", None, True, True),
        ("on", CLAUDE, None, True, False),  # litellm refuses it for Anthropic
        ("off", "openai/gpt-4o-mini", None, True, False),
    ],
)
def test_the_cache_key_goes_where_openai_parameters_go(
    setting: str, model: str, base_url: str | None, chat: bool, keyed: bool
) -> None:
    assert keys_cache(setting, model, base_url, chat=chat) is keyed


def test_breakpoints_skip_a_call_only_message_and_leave_history_alone() -> None:
    history = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "thinking it over"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]},
    ]
    messages = [
        {"role": "system", "content": "be brief"},
        *history,
        {"role": "user", "content": "q3"},
    ]
    marked = with_breakpoints(messages, len(history))
    places = [n for n, m in enumerate(marked) if isinstance(m["content"], list)]
    assert places == [0, 3]  # the system prompt and q2, the last message with words
    assert marked[3]["content"] == [
        {"type": "text", "text": "q2", "cache_control": {"type": "ephemeral"}}
    ]
    assert history[2] == {"role": "user", "content": "q2"}  # stored history untouched
    assert with_breakpoints(messages[:1] + messages[-1:], 0) == [marked[0], messages[-1]]
