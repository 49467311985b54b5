"""`coordination` and `metrics`: what runs beside the bot once it is past one process."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Section(BaseModel):
    # As the other sections in bot/config: the docstrings are docs/config.md's descriptions.
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class CoordinationConfig(_Section):
    redis_url: SecretStr | None = None  # may carry a password: never logged
    """Redis shared by every process of the bot token (e.g. `redis://127.0.0.1:6379/0`): one
    global Discord window for all of them, a global 429 holds them all, and `limits.*` count
    across them. Unreachable, a process falls back to its share and goes on answering. null =
    each process alone (its share of the global limit, its own counts)."""
    prefix: str | None = None
    """The Redis keys' prefix; null = `mcpcord:<application id>` (one bot token, one set)."""


class MetricsConfig(_Section):
    port: int | None = Field(default=None, ge=0, le=65535)
    """Serve Prometheus metrics at http://<host>:<port>/metrics; null = off (0: any free port,
    the log says which)."""
    host: str = "127.0.0.1"
    """The address /metrics listens on (0.0.0.0 in a container that Prometheus scrapes)."""
