"""Settings: defaults < config.yaml < .env < environment, validated once at start-up."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.config.discord_sections import (
    ApprovalDelivery,
    AttachmentsConfig,
    ConversationOptions,
    PermissionsConfig,
    ReactionsConfig,
)
from bot.config.file import ConfigError, YamlSource  # ConfigError: imported from here by all
from bot.config.models import ModelEntry
from bot.config.params import LLMParams
from bot.config.scale import CoordinationConfig, MetricsConfig

DEFAULT_CONFIG_PATH = "config.yaml"


def _unset_if_empty(value: Any) -> Any:
    """`DISCORD_TOKEN=` as copied from .env.example means "not set yet", not an empty secret."""
    return None if isinstance(value, str) and not value.strip() else value


class _Section(BaseModel):
    # The docstring under each field is its description in docs/config.md (bot/ops/config_docs.py).
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class ApprovalLists(_Section):
    never: list[str] = Field(default_factory=list)
    """Tools that run without asking."""
    always: list[str] = Field(default_factory=list)
    """Tools that always ask (every tool not listed under `never` asks too)."""


ApprovalSetting = Literal["never", "always"] | ApprovalLists


class Approvers(_Section):
    """Who may decide a server's approvals besides admins (and the requester)."""

    users: list[int] = Field(default_factory=list)
    """User ids."""
    roles: list[int] = Field(default_factory=list)
    """Role ids."""


class MCPServerConfig(_Section):
    """One MCP server: stdio (`command`) or streamable HTTP (`url`)."""

    command: str | None = None
    """Stdio server: the program the bot starts."""
    args: list[str] = Field(default_factory=list)
    """Stdio server: its arguments."""
    env: dict[str, SecretStr] = Field(default_factory=dict)
    """Stdio server: extra environment variables (values are secrets; `${VAR}` works)."""
    cwd: str | None = None
    """Stdio server: its working directory."""
    url: str | None = None
    """Streamable-HTTP server: its URL (`litellm_proxy` for a LiteLLM proxy's MCP gateway, with `server_side`)."""
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    """HTTP server: headers sent with every request, e.g. `Authorization: \"Bearer ${TOKEN}\"` (secrets)."""
    server_side: bool = False
    """Run by the Responses server itself, not by the bot (responses backend only)."""
    require_approval: ApprovalSetting = "always"
    """`never`, `always`, or `{never: [tool, ...]}` (listed tools run unasked, the rest ask)."""
    allowed_tools: list[str] | None = None
    """Only these tools of the server are offered; null = all."""
    disallowed_tools: list[str] = Field(default_factory=list)
    """Tools of the server never offered (nor allowed to a `server_side` server); wins over `allowed_tools`."""
    approvers: Approvers = Field(default_factory=Approvers)
    """Who may approve this server's tools besides admins (and the requester)."""
    requester_can_approve: bool = True
    """`false`: someone other than the person who asked must approve this server's tools."""
    auto_approve_read_only: bool = False
    """Tools the server annotates readOnlyHint (and not destructiveHint) run without asking."""

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
    """`chat`: litellm, any provider; `responses`: the OpenAI Responses API (OpenAI or a LiteLLM proxy)."""
    model: str = "openai/gpt-4o-mini"
    """chat: a litellm model name (`provider/model`); responses: the server's model name."""
    models: list[ModelEntry] = Field(default_factory=list)
    """Models `/model` may switch a conversation to ([] = only `model`); each a name or `{model, api_key_env, base_url}`."""
    fallback_models: list[ModelEntry] = Field(default_factory=list)
    """Each a name or `{model, api_key_env, base_url}`, tried in order when a turn's model still fails after its retries with a transient error (429, 5xx, overloaded, timeout, lost connection) before any of the answer was shown; the reply then says which model answered. A refused request (400, 401, too long) does not fall through. MCP sampling requests fall back the same way."""
    base_url: str | None = None
    """The API's base URL, e.g. `http://localhost:4000` for a LiteLLM proxy; null = the provider's."""
    api_key: SecretStr | None = None
    """Secret: set `LLM__API_KEY` in the environment or .env, never here. Sent to every model when `base_url` is set; without `base_url` only to models of `model`'s provider (other providers' models use their own variable, `ANTHROPIC_API_KEY`, ...). Without it the provider's own variable (`OPENAI_API_KEY`, ...) is used."""
    system_prompt: str = "You are a helpful assistant on Discord. Today is {date}."
    """The system prompt; `{date}` becomes today's date."""
    state: Literal["server", "local"] = "server"
    """responses only: `server` keeps `previous_response_id`; `local` resends the stored history."""
    vision: bool = False
    """Pass image attachments to the model."""
    transcription_model: str | None = None
    """Transcribe voice messages (answered as if typed) and audio files (read as their text) with this model, e.g. `openai/gpt-4o-mini-transcribe` (chat; other providers through litellm) or `gpt-4o-mini-transcribe` (responses); its key and server as for any model (`models` entries apply). Billed and counted toward the limits like a turn. null = off."""
    max_history_messages: int = Field(default=40, ge=2)
    """Stored messages sent back each turn (cut at a user message)."""
    max_tool_rounds: int = Field(default=8, ge=1)
    """Model-to-tool round trips per turn before the model must answer."""
    request_timeout_s: float = Field(default=120, gt=0)
    """Timeout of one LLM request, in seconds."""
    max_retries: int = Field(default=3, ge=0, le=10)
    """Retries of a request that failed transiently, with backoff (and the server's Retry-After), before the turn fails or goes to the next of `fallback_models`."""
    params: LLMParams = Field(default_factory=dict)
    """Passed through to the API, e.g. `{temperature: 0.3, seed: 7}`; never what the bot sets itself (`model`, `messages`/`input`, `tools`, `stream`, `user`, ...)."""
    send_user_id: bool = True
    """Send a hash of the Discord user id as the request's `user`, so a LiteLLM proxy's
    per-user budgets and rate limits apply across all bot processes."""
    reasoning: Literal["hide", "status", "summary"] = "status"
    """What users see of a model's reasoning: `hide` (typing only), `status` (a `thinking… 12 s` line the answer replaces) or `summary` (the reasoning summary in small text above the answer)."""
    max_context_tokens: int | None = Field(default=None, ge=1024)
    """The input budget in tokens; null = the model's window from litellm's offline model map. Old tool results are shortened first, then the oldest turns left out."""
    prompt_cache: Literal["auto", "on", "off"] = "auto"
    """`cache_control` breakpoints (system prompt, last stored message) and `prompt_cache_key` (an HMAC of the conversation): `auto` where the provider takes them (Anthropic-style models through litellm, OpenAI's own API), `on` to any endpoint (a LiteLLM proxy), `off` never."""
    truncation: Literal["auto", "disabled"] = "auto"
    """responses with `state: server`: sent as `truncation`; `auto` lets the server drop the oldest items instead of refusing every request once the conversation outgrows the window."""

    @field_validator("api_key", mode="before")
    @classmethod
    def _no_empty_key(cls, value: Any) -> Any:
        return _unset_if_empty(value)

    @model_validator(mode="after")
    def _one_setting_per_model(self) -> LLMConfig:
        # A name may be listed in both lists (plain or not); its key and server must be one.
        seen: dict[str, tuple[str | None, str | None]] = {}
        for entry in [*self.models, *self.fallback_models]:
            own = (entry.api_key_env, entry.base_url)
            if own == (None, None):
                continue
            if seen.setdefault(entry.model, own) != own:
                raise ValueError(
                    f"llm: {entry.model} is listed with different api_key_env/base_url; "
                    "give its settings once (a plain name elsewhere uses them)"
                )
        return self

    def model_names(self) -> list[str]:
        """`models` by name: the models /model offers."""
        return [entry.model for entry in self.models]

    def fallback_names(self) -> list[str]:
        return [entry.model for entry in self.fallback_models]

    def entry(self, model: str) -> ModelEntry | None:
        """The entry that gives `model` its own key or server, if one does."""
        for entry in [*self.models, *self.fallback_models]:
            if entry.model == model and (entry.api_key_env or entry.base_url):
                return entry
        return None


class ChannelConfig(_Section):
    """Settings for one channel (and its threads, unless a thread is listed itself)."""

    system_prompt: str | None = None
    """This channel's system prompt instead of `llm.system_prompt` (`{date}` works); null =
    the global one."""
    model: str | None = None
    """This channel's default model instead of `llm.model` (a `/model` choice still wins)."""
    respond_without_mention: bool = False
    """Answer every message here, no mention needed (except messages that mention or reply to
    someone other than the bot)."""


class DiscordConfig(_Section, ConversationOptions):
    allow_dms: bool = False
    """Answer direct messages."""
    scope: Literal["user", "channel", "thread"] = "user"
    """`user`: a conversation per user per channel; `channel`: one shared per channel; `thread`: one per thread."""
    reply_in_thread: bool = False
    """Answer a channel mention in a new thread."""
    edit_interval_s: float = Field(default=1.0, ge=0.2)
    """How often a streaming reply is edited (Discord allows about 5 edits per 5 s per channel)."""
    attachments: AttachmentsConfig = Field(default_factory=AttachmentsConfig)
    """Files attached to a question (or to the message it replies to)."""
    write_budget: bool = True
    """Schedule message writes within Discord's budget (5 per 5 s per channel, 50/s in all)."""
    command_guild_ids: list[int] = Field(default_factory=list)
    """Sync slash commands at once to these guilds; [] = globally (slow to appear)."""
    shard_count: int | None = Field(default=None, ge=1)
    """Total gateway shards across all processes; set it to run as an AutoShardedBot."""
    shard_ids: list[int] | None = None
    """The shards this process runs (needs `shard_count`); null = all of them."""
    global_rate_limit: int | None = Field(default=None, ge=1)
    """Requests/s to Discord from this process; null = 50 x len(shard_ids) / shard_count."""
    permissions: PermissionsConfig = Field(default_factory=PermissionsConfig)
    """Who may talk to the bot."""
    audit_channel_id: int | None = None
    """A channel id that gets one line per tool run and approval decision; null = nowhere."""
    channels: dict[int, ChannelConfig] = Field(default_factory=dict)
    """Per channel id: settings that differ from the global ones."""
    catch_up_s: float = Field(default=600, ge=0)
    """At start-up (and after a gateway session that had to identify again), mentions of the bot and replies to it posted while it was down, no older than this, are answered once (in channels where it answered in the last 7 days; at most 20 each time); 0 = off."""
    stop_button: bool = True
    """A Stop button on a reply while it streams (the asker, admins and managers may press it)."""
    reactions: ReactionsConfig | Literal[False] = Field(default_factory=ReactionsConfig)
    """Status reactions on the asker's message (queued ⏳, working 👀, tool 🔧, approval ✋, done ✅, failed ❌, stopped ⏹), each an emoji or null to skip it; false = none."""
    approvals: ApprovalDelivery = Field(default_factory=ApprovalDelivery)
    """How approval prompts reach the approvers: `{dm: false, ping_roles: false}`."""
    usage_footer: bool = False
    """End each answer with one small line: tokens in and out, cost when known, seconds."""


class LimitsConfig(_Section):
    user_concurrent_turns: int = Field(default=2, ge=1)
    """Answers one user may have running at once."""
    user_turns_per_minute: int = Field(default=10, ge=1)
    """Questions one user may ask per minute."""
    user_daily_tokens: int | None = Field(default=None, ge=1)
    """Tokens one user may use per 24 hours; null = unlimited."""
    user_daily_cost_usd: float | None = Field(default=None, gt=0)
    """US dollars one user may spend per 24 hours, priced from litellm's model map; null =
    unlimited. Turns on models the map has no price for cost nothing here."""


class MCPConfig(_Section):
    approval_timeout_s: float = Field(default=300, gt=0)
    """Unanswered approval requests count as denied after this many seconds."""
    tool_timeout_s: float = Field(default=60, gt=0)
    """Timeout of one tool call, in seconds."""
    sampling: Literal["deny", "ask", "allow"] = "ask"
    """MCP servers asking the bot's model to write something: deny, ask (buttons) or allow."""
    servers: dict[str, MCPServerConfig] = Field(default_factory=dict)
    """MCP servers by name, in the shape of the common `mcpServers` JSON."""


class StorageConfig(_Section):
    path: str = "data/bot.db"
    """The SQLite file (its folder is created). The pid and heartbeat files sit next to it."""
    retention_days: int | None = Field(default=None, ge=1)
    """Conversations idle this many days, and approvals and usage rows older than that, are deleted at start-up and daily (usage is first added to anonymous daily totals); null = keep."""


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Log level."""
    format: Literal["text", "json"] = "text"
    """`text` or `json` (one object per line)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        use_attribute_docstrings=True,
    )

    discord_token: SecretStr | None = None
    """Secret: the bot token; set `DISCORD_TOKEN` in the environment or .env."""
    llm: LLMConfig = Field(default_factory=LLMConfig)
    """The model and how to reach it."""
    discord: DiscordConfig = Field(default_factory=DiscordConfig)
    """How the bot behaves on Discord."""
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    """Per-user limits."""
    mcp: MCPConfig = Field(default_factory=MCPConfig)
    """MCP servers and their approval rules."""
    storage: StorageConfig = Field(default_factory=StorageConfig)
    """Where the data lives."""
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    """Logs on stderr."""
    coordination: CoordinationConfig = Field(default_factory=CoordinationConfig)
    """What several processes of one bot share (Redis)."""
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    """Prometheus metrics."""
    shutdown_grace_s: float = Field(default=20, ge=0)
    """On SIGTERM, running answers get this many seconds to finish."""

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
        return (init_settings, env_settings, dotenv_settings, YamlSource(settings_cls, path))

    @field_validator("discord_token", mode="before")
    @classmethod
    def _no_empty_token(cls, value: Any) -> Any:
        return _unset_if_empty(value)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.llm.models and self.llm.model not in self.llm.model_names():
            self.llm.models.insert(0, ModelEntry(model=self.llm.model))
        if self.discord.shard_ids is not None and self.discord.shard_count is None:
            raise ValueError("discord.shard_ids needs discord.shard_count")
        count = self.discord.shard_count
        if count and any(not 0 <= i < count for i in self.discord.shard_ids or []):
            raise ValueError(
                f"discord.shard_ids: each id must be from 0 to {count - 1} (shard_count - 1)"
            )
        for name, server in self.mcp.servers.items():
            if server.server_side and self.llm.backend != "responses":
                raise ValueError(
                    f"mcp.servers.{name}.server_side works only with llm.backend: responses"
                )
        return self


_FROM_DOTENV = "MCPCORD_FROM_DOTENV"  # names this process took from .env, comma-separated


def _export_dotenv() -> None:
    """litellm and openai read provider keys (OPENAI_API_KEY, ...) from the process environment
    only, and .env.example offers them in .env: export what the real environment lacks. Names
    taken from .env before are refreshed, so a reload sees an edited .env."""
    taken = set(filter(None, os.environ.get(_FROM_DOTENV, "").split(",")))
    for name, value in dotenv_values(".env").items():
        if "__" in name or name.lower() in Settings.model_fields or name == "BOT_CONFIG":
            continue  # settings: pydantic-settings reads them from .env itself
        if value and (name not in os.environ or name in taken):
            os.environ[name] = value
            taken.add(name)
    if taken:
        os.environ[_FROM_DOTENV] = ",".join(sorted(taken))


def load_settings() -> Settings:
    """Build Settings or raise ConfigError with one line per problem."""
    _export_dotenv()
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
        # A whole-model check names its keys itself.
        lines.append(f"{loc}: {message}" if loc else message)
    # A union (require_approval) reports each branch; keep the first complaint per key.
    seen: dict[str, str] = {}
    for line in lines:
        seen.setdefault(line.split(":", 1)[0], line)
    return "\n".join(seen.values())


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part.startswith("literal[") or part == "ApprovalLists")
