"""docs/config.md is generated from the Settings model and must match it."""

from __future__ import annotations

from pydantic import BaseModel

from bot.config import Settings
from bot.ops.config_docs import DOC_PATH, render, section_of


def test_config_reference_matches_the_settings_model() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render(), (
        "docs/config.md is out of date: run `python -m bot.ops.config_docs` and commit it"
    )


def test_every_key_has_a_description() -> None:
    missing: list[str] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            if not field.description:
                missing.append(prefix + name)
            section, named = section_of(field.annotation)
            if section is not None:
                walk(section, f"{prefix}{name}.{named + '.' if named else ''}")

    walk(Settings, "")
    assert not missing, f"give these a docstring under the field in bot/config.py: {missing}"


def test_reference_lists_every_key() -> None:
    text = render()
    for key in ("llm.system_prompt", "discord.permissions.users.allow", "shutdown_grace_s"):
        assert f"| `{key}` |" in text
    assert "| `mcp.servers.<name>.require_approval` |" in text
