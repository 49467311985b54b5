"""Reading config.yaml: one-line YAML errors, `${VAR}` from the environment, secrets refused."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Keys that hold secrets: they must come from the environment or .env, never from config.yaml.
_SECRET_PATHS = {("discord_token",), ("llm", "api_key")}


class ConfigError(Exception):
    """A mistake in configuration, said in one line that names the key and the fix."""


class YamlSource(PydanticBaseSettingsSource):
    """config.yaml with `${VAR}` expanded from the environment and .env."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self._path = path

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ returns the whole mapping

    def __call__(self) -> dict[str, Any]:
        data = load_yaml(self._path)
        for path in _SECRET_PATHS:
            node: Any = data
            for part in path:
                node = node.get(part) if isinstance(node, dict) else None
            if node is not None:
                env = "__".join(path).upper()
                raise ConfigError(
                    f"{'.'.join(path)}: secrets are not read from {self._path}; "
                    f"remove it there and set {env} in the environment or .env"
                )
        for key in data:
            # Settings ignores unknown names (the environment is full of them), so a misspelt
            # section in the file would be dropped without a word: say so instead.
            if str(key) not in self.settings_cls.model_fields:
                raise ConfigError(
                    f"{key}: unknown key in {self._path}; check the spelling against docs/config.md"
                )
        variables = {k: v for k, v in dotenv_values(".env").items() if v is not None}
        variables.update(os.environ)
        return _expand(data, variables, ())


def load_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        if os.environ.get("BOT_CONFIG"):
            raise ConfigError(
                f"BOT_CONFIG: {path} does not exist; point BOT_CONFIG at a config file"
            )
        return {}  # no config.yaml: defaults and environment only
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror}); fix its permissions") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{path}: invalid YAML{where} ({problem}); fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections (llm:, discord:, ...)"
        )
    return data


def _expand(value: Any, variables: dict[str, str], where: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, variables, (*where, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, variables, (*where, str(i))) for i, v in enumerate(value)]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in variables:
                raise ConfigError(
                    f"{'.'.join(where)}: ${{{name}}} is used but {name} is not set; "
                    f"set {name} in the environment or .env"
                )
            return variables[name]

        return _VAR.sub(substitute, value)
    return value
