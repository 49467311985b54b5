"""Logging set-up: plain text or one JSON object per line, and quiet third-party chatter."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from bot.config import LoggingConfig


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
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
