"""Liveness for a container: the bot touches a heartbeat file; `python -m bot health` reads it.

The file is written from the event loop only while the gateway connection is open, so a stale
file means a blocked loop, a lost connection or a dead process: all reasons to restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from bot.config import Settings

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 10.0
# Several missed beats before anyone calls the bot unhealthy: a GC pause or a slow
# reconnect should not get the container restarted.
STALE_AFTER_S = 45.0


def heartbeat_path(settings: Settings) -> Path:
    """Next to the database, so each shard process (each with its own database) has its own."""
    return Path(settings.storage.path + ".heartbeat")


def gateway_open(bot: Any) -> bool:
    """Whether discord.py holds an open gateway socket (every shard's, for a sharded bot)."""
    if bot.is_closed() or not bot.is_ready():
        return False
    shards = getattr(bot, "shards", None)
    if shards:
        return all(not shard.is_closed() for shard in shards.values())
    return bot.ws is not None and bot.ws.open


async def beat(bot: Any, path: Path) -> None:
    """Touch `path` every few seconds while connected; runs until cancelled."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        while True:
            connected = gateway_open(bot)
            if connected:
                _write(path, {"pid": os.getpid(), "time": time.time(), "guilds": len(bot.guilds)})
            # Look often until connected, so the first beat follows READY closely.
            await asyncio.sleep(HEARTBEAT_EVERY_S if connected else 0.5)
    finally:
        _remove(path)  # a stopped bot is not healthy, whatever the file said


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)  # atomic: `health` never reads half a file


def check_health(settings: Settings, *, now: float | None = None) -> tuple[bool, str]:
    """(healthy, one line saying why) from the heartbeat file."""
    path = heartbeat_path(settings)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        beat_at = float(data["time"])
    except FileNotFoundError:
        return False, f"unhealthy: no heartbeat at {path} (not connected to Discord yet?)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return False, f"unhealthy: unreadable heartbeat {path}: {exc}"
    age = (now if now is not None else time.time()) - beat_at
    if not _running(data.get("pid")):
        return False, f"unhealthy: the bot (pid {data.get('pid')}) is not running"
    if age > STALE_AFTER_S:
        return False, f"unhealthy: last heartbeat {age:.0f} s ago (limit {STALE_AFTER_S:.0f} s)"
    return True, f"healthy: heartbeat {age:.0f} s ago, {data.get('guilds', '?')} guild(s)"


def _running(pid: Any) -> bool:
    """Whether `pid` is alive; a killed bot leaves its last heartbeat behind."""
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True
