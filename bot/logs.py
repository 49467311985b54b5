"""Logging set-up: plain text or one JSON object per line, and quiet third-party chatter."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from bot.backends.model_info import model_info
from bot.config import LoggingConfig
from bot.core.events import Usage


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        turn = getattr(record, "turn", None)
        if isinstance(turn, dict):
            entry["turn"] = turn  # bot.core.turn_log: the turn's fields, for log queries
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _NoVoiceNotice(logging.Filter):
    """discord.py warns at start-up that voice libraries are missing; the bot never uses voice."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "voice will NOT be supported" not in record.getMessage()


def setup_logging(config: LoggingConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(_NoVoiceNotice())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.level)
    # These log request details (URLs, sometimes headers) at INFO/DEBUG: keep them quiet.
    for noisy in ("httpx", "httpx2", "httpcore", "LiteLLM", "litellm", "openai", "mcp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def turn_cost(model: str, usage: Usage) -> float | None:
    """A turn's cost in USD from litellm's offline price map (read without importing litellm,
    so it works on both backends); None when the map has no price for the model."""
    info = model_info(model) if model else None
    if info is None:
        return None
    return info.cost_usd(
        input_tokens=usage.input_tokens,
        cached_tokens=usage.cached_input_tokens,
        output_tokens=usage.output_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )
