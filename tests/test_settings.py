"""Where settings come from: defaults < config.yaml < .env < environment, and how mistakes read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with nothing inherited: no BOT_CONFIG, no LLM__/DISCORD__ from the developer."""
    for name in list(os.environ):
        if name.upper().startswith(("LLM__", "DISCORD", "MCP__", "LIMITS__", "STORAGE__", "BOT_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_then_yaml_then_dotenv_then_environment(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "config.yaml").write_text(
        "llm:\n  model: openai/from-yaml\n  max_tool_rounds: 3\n"
        "discord:\n  scope: channel\n  edit_interval_s: 2.0\n"
    )
    (workdir / ".env").write_text(
        "DISCORD_TOKEN=token-from-dotenv\nLLM__MODEL=openai/from-dotenv\nDISCORD__SCOPE=thread\n"
    )
    monkeypatch.setenv("DISCORD__SCOPE", "user")
    settings = load_settings()
    assert settings.llm.max_tool_rounds == 3  # only in config.yaml
    assert settings.discord.edit_interval_s == 2.0
    assert settings.llm.model == "openai/from-dotenv"  # .env beats config.yaml
    assert settings.discord.scope == "user"  # the environment beats .env
    assert settings.discord_token is not None
    assert settings.discord_token.get_secret_value() == "token-from-dotenv"
    assert settings.llm.backend == "chat"  # untouched default
    assert "token-from-dotenv" not in repr(settings)


def test_bot_config_names_another_file(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = workdir / "elsewhere.yaml"
    other.write_text("llm:\n  model: openai/other-file\n")
    (workdir / "config.yaml").write_text("llm:\n  model: openai/default-file\n")
    monkeypatch.setenv("BOT_CONFIG", str(other))
    assert load_settings().llm.model == "openai/other-file"


def test_variables_in_yaml_come_from_dotenv_too(workdir: Path) -> None:
    (workdir / "config.yaml").write_text(
        "mcp:\n  servers:\n    gh:\n      url: http://127.0.0.1:9/mcp\n"
        "      headers: {Authorization: 'Bearer ${GH_TOKEN_FOR_TEST}'}\n"
    )
    (workdir / ".env").write_text("GH_TOKEN_FOR_TEST=ghp_secret\n")
    header = load_settings().mcp.servers["gh"].headers["Authorization"]
    assert header.get_secret_value() == "Bearer ghp_secret"
    assert "ghp_secret" not in repr(header)


def test_several_mistakes_give_one_line_each(workdir: Path) -> None:
    (workdir / "config.yaml").write_text(
        "llm:\n  backend: magic\n  max_tool_rounds: 0\n"
        "discord:\n  scopee: user\n  edit_interval_s: soon\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_settings()
    lines = str(raised.value).splitlines()
    keys = sorted(line.split(":", 1)[0] for line in lines)
    assert keys == sorted(
        ["llm.backend", "llm.max_tool_rounds", "discord.scopee", "discord.edit_interval_s"]
    ), lines
    assert all(len(line) < 200 and "http" not in line for line in lines)


# What the bot sets on each request itself (issue 27); llm.params must never override them.
OWNED = [
    "model",
    "messages",
    "input",
    "tools",
    "tool_choice",
    "stream",
    "stream_options",
    "store",
    "previous_response_id",
    "truncation",
    "user",
    "safety_identifier",
    "prompt_cache_key",
]


@pytest.mark.parametrize("key", OWNED)
def test_params_cannot_set_what_the_bot_owns(workdir: Path, key: str) -> None:
    (workdir / "config.yaml").write_text(f"llm:\n  params: {{temperature: 0.2, {key}: x}}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    line = str(caught.value)
    assert line == (
        f"llm.params: `{key}` is set by the bot itself and cannot be passed through; "
        "remove it from llm.params"
    )


def test_documented_params_pass(workdir: Path) -> None:
    (workdir / "config.yaml").write_text(
        "llm:\n  params: {temperature: 0.2, top_p: 0.9, max_tokens: 9, max_output_tokens: 9,"
        " reasoning: {effort: low}, reasoning_effort: low, seed: 7, stop: [END]}\n"
    )
    assert load_settings().llm.params["seed"] == 7
