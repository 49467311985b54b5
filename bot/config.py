"""Settings: defaults < config.yaml < .env < environment, validated once at start-up."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_CONFIG_PATH = "config.yaml"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Keys that hold secrets: they must come from the environment or .env, never from config.yaml.
_SECRET_PATHS = {("discord_token",), ("llm", "api_key")}


class ConfigError(Exception):
    """A mistake in configuration, said in one line that names the key and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApprovalLists(_Section):
    never: list[str] = Field(default_factory=list)
    always: list[str] = Field(default_factory=list)


ApprovalSetting = Literal["never", "always"] | ApprovalLists


class Approvers(_Section):
    """Who may decide a server's approvals besides admins (and the requester)."""

    users: list[int] = Field(default_factory=list)
    roles: list[int] = Field(default_factory=list)


class MCPServerConfig(_Section):
    """One MCP server: stdio (`command`) or streamable HTTP (`url`)."""

    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, SecretStr] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    # Run by the Responses server itself rather than by the bot (responses backend only).
    server_side: bool = False
    require_approval: ApprovalSetting = "always"
    allowed_tools: list[str] | None = None
    approvers: Approvers = Field(default_factory=Approvers)
    # false: someone other than the person who asked must approve this server's tools.
    requester_can_approve: bool = True
    # Tools the server annotates readOnlyHint (and not destructiveHint) run without asking.
    auto_approve_read_only: bool = False

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServerConfig:
        if bool(self.command) == bool(self.url):
            raise ValueError("give exactly one of `command` (stdio) or `url` (streamable HTTP)")
        if self.server_side and not self.url:
            raise ValueError("`server_side: true` needs a `url` the Responses server can reach")
        if self.server_side and self.auto_approve_read_only:
            raise ValueError(
                "`auto_approve_read_only` needs tool annotations the bot sees; it works only "
                "for servers the bot runs (remove it or `server_side: true`)"
            )
        return self


class LLMConfig(_Section):
    backend: Literal["chat", "responses"] = "chat"
    model: str = "openai/gpt-4o-mini"
    models: list[str] = Field(default_factory=list)
    base_url: str | None = None
    api_key: SecretStr | None = None
    system_prompt: str = "You are a helpful assistant on Discord. Today is {date}."
    state: Literal["server", "local"] = "server"
    vision: bool = False
    max_history_messages: int = Field(default=40, ge=2)
    max_tool_rounds: int = Field(default=8, ge=1)
    request_timeout_s: float = Field(default=120, gt=0)
    params: dict[str, Any] = Field(default_factory=dict)


class AllowBlock(_Section):
    allow: list[int] = Field(default_factory=list)
    block: list[int] = Field(default_factory=list)


class PermissionsConfig(_Section):
    users: AllowBlock = Field(default_factory=AllowBlock)
    roles: AllowBlock = Field(default_factory=AllowBlock)
    channels: AllowBlock = Field(default_factory=AllowBlock)
    admin_ids: list[int] = Field(default_factory=list)
    # May /model and /reset conversations shared by a channel or thread (admins may too).
    manager_roles: list[int] = Field(default_factory=list)


class AttachmentsConfig(_Section):
    max_bytes: int = Field(default=2_000_000, ge=1)
    """Text, code and PDF files larger than this are skipped (with a line saying so)."""
    max_chars: int = Field(default=20_000, ge=100)
    """Text taken from one file; the rest is cut and the model is told so."""


class DiscordConfig(_Section):
    allow_dms: bool = False
    scope: Literal["user", "channel", "thread"] = "user"
    reply_in_thread: bool = False
    edit_interval_s: float = Field(default=1.0, ge=0.2)
    attachments: AttachmentsConfig = Field(default_factory=AttachmentsConfig)
    # Schedule message writes within Discord's budget (5 per 5 s per channel, 50/s in all).
    write_budget: bool = True
    command_guild_ids: list[int] = Field(default_factory=list)
    shard_count: int | None = Field(default=None, ge=1)
    shard_ids: list[int] | None = None
    permissions: PermissionsConfig = Field(default_factory=PermissionsConfig)
    # One line per tool run and approval decision goes to this channel (None: nowhere).
    audit_channel_id: int | None = None


class LimitsConfig(_Section):
    user_concurrent_turns: int = Field(default=2, ge=1)
    user_turns_per_minute: int = Field(default=10, ge=1)
    user_daily_tokens: int | None = Field(default=None, ge=1)


class MCPConfig(_Section):
    approval_timeout_s: float = Field(default=300, gt=0)
    tool_timeout_s: float = Field(default=60, gt=0)
    servers: dict[str, MCPServerConfig] = Field(default_factory=dict)


class StorageConfig(_Section):
    path: str = "data/bot.db"


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class _YamlSource(PydanticBaseSettingsSource):
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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    discord_token: SecretStr | None = None
    llm: LLMConfig = Field(default_factory=LLMConfig)
    discord: DiscordConfig = Field(default_factory=DiscordConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    mcp: MCPConfig = Field(default_factory=MCPConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    shutdown_grace_s: float = Field(default=20, ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = Path(os.environ.get("BOT_CONFIG") or DEFAULT_CONFIG_PATH)
        # First wins: explicit arguments, then environment, then .env, then config.yaml.
        return (init_settings, env_settings, dotenv_settings, _YamlSource(settings_cls, path))

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.llm.model not in self.llm.models and self.llm.models:
            self.llm.models.insert(0, self.llm.model)
        if self.discord.shard_ids is not None and self.discord.shard_count is None:
            raise ValueError("discord.shard_ids needs discord.shard_count")
        for name, server in self.mcp.servers.items():
            if server.server_side and self.llm.backend != "responses":
                raise ValueError(
                    f"mcp.servers.{name}.server_side works only with llm.backend: responses"
                )
        return self

    def llm_api_key(self) -> str | None:
        """LLM__API_KEY, else the provider's own variable (which litellm/openai read themselves)."""
        if self.llm.api_key is not None:
            return self.llm.api_key.get_secret_value()
        return None


def load_settings() -> Settings:
    """Build Settings or raise ConfigError with one line per problem."""
    # litellm and openai read provider keys (OPENAI_API_KEY, ...) from the process environment
    # only; .env.example offers them in .env, so export what the real environment lacks.
    for name, value in dotenv_values(".env").items():
        if value and name not in os.environ:
            os.environ[name] = value
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in error["loc"] if not _is_union_tag(p))
        message = error["msg"]
        if error["type"] == "literal_error":
            allowed = error.get("ctx", {}).get("expected", "")
            message = f"{error['input']!r} is not allowed; use one of {allowed}"
        elif error["type"] == "extra_forbidden":
            message = "unknown key; check the spelling against config.yaml in the README"
        elif error["type"].endswith("_parsing") or error["type"].endswith("_type"):
            message = f"{error['input']!r} is not valid: {error['msg'].lower()}"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        lines.append(f"{loc or 'config'}: {message}")
    # A union (require_approval) reports each branch; keep the first complaint per key.
    seen: dict[str, str] = {}
    for line in lines:
        seen.setdefault(line.split(":", 1)[0], line)
    return "\n".join(seen.values())


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part.startswith("literal[") or part == "ApprovalLists")
