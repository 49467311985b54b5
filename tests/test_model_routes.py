"""Which key and server each model gets: LLM__API_KEY only where it belongs (bot/backends/routes.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from bot.backends.chat_transport import needs_litellm
from bot.backends.routes import route
from bot.config import LLMConfig, ModelEntry, load_settings


def llm(**values: Any) -> LLMConfig:
    return LLMConfig(api_key=SecretStr("sk-primary"), **values)


def key_of(config: LLMConfig, model: str) -> tuple[str | None, str, str | None]:
    found = route(config, model)
    secret = found.api_key.get_secret_value() if found.api_key else None
    return secret, found.key_name, found.base_url


def test_without_base_url_the_key_goes_only_to_the_primary_models_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    config = llm(model="openai/gpt-4o", fallback_models=["openai/gpt-4o-mini", "anthropic/claude"])
    assert key_of(config, "openai/gpt-4o") == ("sk-primary", "LLM__API_KEY", None)
    assert key_of(config, "openai/gpt-4o-mini") == ("sk-primary", "LLM__API_KEY", None)
    other = route(config, "anthropic/claude")
    assert other.api_key is None and other.own_variable
    assert other.key_name == "anthropic's own variable"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant")
    assert route(config, "anthropic/claude").key_name == "ANTHROPIC_API_KEY"


def test_with_base_url_every_model_goes_there_with_llm_api_key() -> None:
    config = llm(model="openai/gpt-4o", base_url="http://proxy:4000", models=["anthropic/claude"])
    assert key_of(config, "anthropic/claude") == ("sk-primary", "LLM__API_KEY", "http://proxy:4000")
    # A channel's model or an old /model choice, listed nowhere, follows the same rule.
    assert key_of(config, "groq/llama") == ("sk-primary", "LLM__API_KEY", "http://proxy:4000")


def test_the_responses_backend_sends_every_model_to_its_one_server() -> None:
    config = llm(backend="responses", model="gpt-4o", fallback_models=["o4-mini"])
    assert key_of(config, "o4-mini") == ("sk-primary", "LLM__API_KEY", None)


def test_a_mapping_entry_brings_its_own_key_and_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_KEY", "sk-local")
    config = llm(
        model="openai/gpt-4o",
        base_url="http://proxy:4000",
        models=[
            "openai/gpt-4o",
            {"model": "openai/llama", "api_key_env": "LOCAL_KEY", "base_url": "http://gpu:8000/v1"},
            {"model": "openai/keyless", "base_url": "http://ollama:11434/v1"},
            {"model": "openai/other-team", "api_key_env": "LOCAL_KEY"},
        ],
    )
    assert config.model_names() == [
        "openai/gpt-4o",
        "openai/llama",
        "openai/keyless",
        "openai/other-team",
    ]
    assert key_of(config, "openai/llama") == ("sk-local", "LOCAL_KEY", "http://gpu:8000/v1")
    # Its own server and no api_key_env: no key at all, never LLM__API_KEY or OPENAI_API_KEY.
    keyless = route(config, "openai/keyless")
    assert keyless.api_key is None and not keyless.own_variable
    # Only api_key_env: the usual server (here the proxy) with that key.
    assert key_of(config, "openai/other-team") == ("sk-local", "LOCAL_KEY", "http://proxy:4000")


def test_the_entrys_key_is_a_secret_never_dumped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_KEY", "sk-local")
    entry = ModelEntry.model_validate({"model": "openai/llama", "api_key_env": "LOCAL_KEY"})
    assert entry.api_key == SecretStr("sk-local")
    assert "sk-local" not in repr(entry) + str(entry.model_dump())


def test_a_missing_key_variable_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_MODEL_KEY", raising=False)
    with pytest.raises(ValidationError, match="NOPE_MODEL_KEY is not set"):
        llm(fallback_models=[{"model": "anthropic/claude", "api_key_env": "NOPE_MODEL_KEY"}])


def test_one_model_with_two_different_settings_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A_KEY", "a")
    with pytest.raises(ValidationError, match="listed with different api_key_env/base_url"):
        llm(
            models=[{"model": "openai/x", "api_key_env": "A_KEY"}],
            fallback_models=[{"model": "openai/x", "base_url": "http://elsewhere/v1"}],
        )


def test_entries_load_from_yaml_with_keys_from_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("LLM__", "BOT_")):
            monkeypatch.delenv(name)
    # load_settings exports .env names into the environment: undone after the test.
    for name in ("LOCAL_KEY", "MCPCORD_FROM_DOTENV"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(
        "llm:\n  model: openai/gpt-4o\n  models:\n"
        "    - {model: openai/b, api_key_env: LOCAL_KEY, base_url: http://gpu:8000/v1}\n"
    )
    (tmp_path / ".env").write_text("LOCAL_KEY=sk-from-dotenv\n")
    settings = load_settings()
    # The primary is offered first; entries are listed by name.
    assert settings.llm.model_names() == ["openai/gpt-4o", "openai/b"]
    assert key_of(settings.llm, "openai/b") == (
        "sk-from-dotenv",
        "LOCAL_KEY",
        "http://gpu:8000/v1",
    )
    assert not needs_litellm(settings.llm.models)
    assert needs_litellm([*settings.llm.models, ModelEntry(model="anthropic/claude")])
