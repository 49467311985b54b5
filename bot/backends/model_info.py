"""What a model costs and how much it can read, from litellm's offline price map.

litellm ships its model map as a JSON file inside the package. Reading that file directly, rather
than `litellm.get_model_info`, keeps litellm's ~130 MB import out of bots that talk to
OpenAI-compatible endpoints only (see chat_transport.py), and never touches the network.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PRICE_MAP_FILE = "model_prices_and_context_window_backup.json"


@dataclass(frozen=True)
class ModelInfo:
    max_input_tokens: int | None
    input_cost_per_token: float | None
    output_cost_per_token: float | None
    cached_input_cost_per_token: float | None
    cache_write_cost_per_token: float | None = None
    provider: str = ""  # litellm's name for who serves it: anthropic, bedrock_converse, openai...
    supports_prompt_caching: bool = False
    # Transcription models: the gpt-4o-*-transcribe bill audio tokens, whisper-1 seconds.
    input_cost_per_audio_token: float | None = None
    input_cost_per_second: float | None = None

    def cost_usd(
        self,
        *,
        input_tokens: int,
        cached_tokens: int,
        output_tokens: int,
        cache_write_tokens: int = 0,
    ) -> float | None:
        """US dollars for one request's usage; None when the map has no price for the model.
        Reasoning tokens are billed as output tokens, so they are inside `output_tokens`; cache
        reads and writes are parts of `input_tokens`, each at its own rate where the map has one."""
        if self.input_cost_per_token is None or self.output_cost_per_token is None:
            return None
        cached = min(cached_tokens, input_tokens)
        written = min(cache_write_tokens, input_tokens - cached)
        cached_rate = self.cached_input_cost_per_token
        if cached_rate is None:
            cached_rate = self.input_cost_per_token
        write_rate = self.cache_write_cost_per_token
        if write_rate is None:
            write_rate = self.input_cost_per_token
        return (
            (input_tokens - cached - written) * self.input_cost_per_token
            + cached * cached_rate
            + written * write_rate
            + output_tokens * self.output_cost_per_token
        )


def model_info(model: str) -> ModelInfo | None:
    """The map's entry for `model` ("openai/gpt-4o-mini" or "gpt-4o-mini"), or None."""
    prices = _price_map()
    entry = prices.get(model)
    if entry is None and "/" in model:
        entry = prices.get(model.split("/", 1)[1])
    if not isinstance(entry, dict):
        return None
    return ModelInfo(
        max_input_tokens=_number(entry.get("max_input_tokens"), int),
        input_cost_per_token=_number(entry.get("input_cost_per_token"), float),
        output_cost_per_token=_number(entry.get("output_cost_per_token"), float),
        cached_input_cost_per_token=_number(entry.get("cache_read_input_token_cost"), float),
        cache_write_cost_per_token=_number(entry.get("cache_creation_input_token_cost"), float),
        provider=str(entry.get("litellm_provider") or ""),
        supports_prompt_caching=entry.get("supports_prompt_caching") is True,
        input_cost_per_audio_token=_number(entry.get("input_cost_per_audio_token"), float),
        input_cost_per_second=_number(entry.get("input_cost_per_second"), float),
    )


@cache
def _price_map() -> dict[str, Any]:
    # find_spec locates the package without running its (heavy) __init__.
    spec = importlib.util.find_spec("litellm")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / PRICE_MAP_FILE
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                log.warning("could not read litellm's model map %s: %s", path, exc)
                return {}
            return data if isinstance(data, dict) else {}
    log.info("litellm's model map was not found: costs and context windows are unknown")
    return {}


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return kind(value)
