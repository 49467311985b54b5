"""Live reload: what changed between two configurations, and how `python -m bot reload` finds the bot.

The running bot writes its pid next to its database; `python -m bot reload` reads it and sends
SIGHUP, the same signal an operator (or `docker compose kill -s HUP`) would send.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bot.config import Settings

# Read once at start-up (login, gateway shards, the open database, the approval waits and tool
# calls already under way): a change is reported and applied at the next restart.
RESTART_ONLY = (
    "discord_token",
    "discord.shard_count",
    "discord.shard_ids",
    "discord.command_guild_ids",
    "discord.audit_channel_id",  # the audit channel and its observer are wired into the client
    "discord.write_budget",  # one scheduler for every write, built with the client
    "discord.catch_up_s",  # catch-ups (start-up, re-identify) use the value it started with
    "discord.global_rate_limit",  # the scheduler's global window, built with the client
    "coordination",  # the Redis connection and its scripts, wired in at start-up
    "metrics",  # the /metrics server and its hooks into the client
    "storage",
    "mcp.approval_timeout_s",
    "mcp.tool_timeout_s",
    "mcp.sampling",  # told to each MCP server when it connects
)


def pid_path(settings: Settings) -> Path:
    """Next to the database, so shard processes (one database each) do not share it."""
    return Path(settings.storage.path + ".pid")


def write_pid(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n", encoding="utf-8")


def remove_pid(path: Path) -> None:
    try:
        if path.read_text(encoding="utf-8").strip() == str(os.getpid()):
            path.unlink()
    except OSError:
        pass


def signal_reload(settings: Settings) -> tuple[bool, str]:
    """Send SIGHUP to the running bot: (sent, one line saying to whom or why not)."""
    path = pid_path(settings)
    try:
        pid = int(path.read_text(encoding="utf-8").strip())
        os.kill(pid, signal.SIGHUP)
    except FileNotFoundError:
        return False, (
            f"no running bot: {path} is missing (run reload with the bot's own config and "
            "working directory)"
        )
    except (ValueError, ProcessLookupError, PermissionError):
        return False, f"no running bot: {path} names no process of ours; is the bot running?"
    return True, f"sent SIGHUP to the bot (pid {pid}); its log says what changed"


def _leaves(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        # Fields left at their defaults are not named: an entry added to a map (a channel, a
        # server) reads as the keys someone wrote, not every key the section has.
        value = {
            name: getattr(value, name) for name in value.model_fields_set | _non_default(value)
        }
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_leaves(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _non_default(model: BaseModel) -> set[str]:
    return {
        name
        for name, field in type(model).model_fields.items()
        if getattr(model, name) != field.get_default(call_default_factory=True)
    }


def changed_keys(old: Settings, new: Settings) -> list[str]:
    """Dotted keys whose value differs (SecretStr compares by value; values are never shown)."""
    before, after = _leaves(old, ""), _leaves(new, "")
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    # An empty map is a leaf on one side only: name what was added in it, not the map.
    return sorted(k for k in changed if not any(o.startswith(k + ".") for o in changed))


def _restart_only(key: str) -> bool:
    return any(key == r or key.startswith(r + ".") for r in RESTART_ONLY)


def split_changes(keys: list[str]) -> tuple[list[str], list[str]]:
    """(applied now, needing a restart)."""
    return [k for k in keys if not _restart_only(k)], [k for k in keys if _restart_only(k)]


def _kept(new: BaseModel, names: dict[str, Any]) -> Any:
    """`new` with these fields' running values, where they differ. An equal field is left as
    the file has it, so the next reload does not read the copy as a change of its own."""
    update = {name: value for name, value in names.items() if value != getattr(new, name)}
    return new.model_copy(update=update) if update else new


def keep_restart_only(old: Settings, new: Settings) -> Settings:
    """`new`, except for the keys only a restart can change, which keep their running values."""
    running = old.discord
    discord = _kept(
        new.discord,
        {
            "shard_count": running.shard_count,
            "shard_ids": running.shard_ids,
            "command_guild_ids": running.command_guild_ids,
            "audit_channel_id": running.audit_channel_id,
            "write_budget": running.write_budget,
            "catch_up_s": running.catch_up_s,
            "global_rate_limit": running.global_rate_limit,
        },
    )
    mcp = _kept(
        new.mcp,
        {
            "approval_timeout_s": old.mcp.approval_timeout_s,
            "tool_timeout_s": old.mcp.tool_timeout_s,
            "sampling": old.mcp.sampling,
        },
    )
    return _kept(
        new,
        {
            "discord_token": old.discord_token,
            "storage": old.storage,
            "coordination": old.coordination,
            "metrics": old.metrics,
            "discord": discord,
            "mcp": mcp,
        },
    )


# Maps whose entries are named by the operator: a change anywhere inside one reads as the entry.
_NAMED_ENTRIES = (["mcp", "servers"], ["discord", "channels"])


def summarize(keys: list[str]) -> str:
    """Keys grouped to their entry: `mcp.servers.web.url` reads `mcp.servers.web`, and
    `discord.channels.123.system_prompt` reads `discord.channels.123`."""
    shown: list[str] = []
    for key in keys:
        parts = key.split(".")
        short = ".".join(parts[:3]) if parts[:2] in _NAMED_ENTRIES else key
        if short not in shown:
            shown.append(short)
    return ", ".join(shown)
