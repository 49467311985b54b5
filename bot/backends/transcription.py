"""Voice messages and audio files to text through the provider's `/audio/transcriptions`.

The audio goes exactly as Discord served it: every transcription endpoint takes Discord's
ogg/opus, and re-encoding would cost CPU and fidelity for nothing. `openai/...` models (and
every model on the responses backend, whose one server speaks OpenAI's API) go through the
openai SDK, the rest through litellm's `atranscription`; server and key as routes.py decides
for any model.
"""

from __future__ import annotations

import time
from typing import Any

from bot.backends.base import openai_client
from bot.backends.chat_transport import import_litellm, litellm_route, speaks_openai
from bot.backends.model_info import model_info
from bot.backends.routes import OPENAI_PREFIX
from bot.config import LLMConfig
from bot.core.events import Usage
from bot.core.voice import Heard


async def transcribe(llm: LLMConfig, filename: str, data: bytes, content_type: str | None) -> Heard:
    """What `llm.transcription_model` heard in the file; raises as the provider library does."""
    model = llm.transcription_model
    if model is None:
        raise ValueError("llm.transcription_model is not set")
    started = time.monotonic()
    file = (filename, data, content_type or "application/octet-stream")
    if llm.backend == "responses" or speaks_openai(model):
        async with openai_client(llm, model) as client:
            result: Any = await client.audio.transcriptions.create(
                model=model.removeprefix(OPENAI_PREFIX), file=file
            )
    else:
        litellm = import_litellm()
        result = await litellm.atranscription(model=model, file=file, **litellm_route(llm, model))
    usage, seconds = _usage(getattr(result, "usage", None))
    return Heard(
        text=str(getattr(result, "text", "") or ""),
        model=model,
        usage=usage,
        seconds=seconds,
        cost_usd=transcription_cost(model, usage, seconds),
        duration_s=time.monotonic() - started,
    )


def _usage(reported: Any) -> tuple[Usage, float | None]:
    """OpenAI's two shapes: `{"type": "tokens", input_tokens, output_tokens}` (gpt-4o-*-transcribe)
    and `{"type": "duration", "seconds"}` (whisper-1); missing counts are zero."""
    if reported is None:
        return Usage(), None
    if getattr(reported, "type", None) == "duration":
        seconds = getattr(reported, "seconds", None)
        return Usage(), float(seconds) if isinstance(seconds, int | float) else None
    tokens = [getattr(reported, name, 0) for name in ("input_tokens", "output_tokens")]
    counts = [int(n) if isinstance(n, int | float) else 0 for n in tokens]
    return Usage(input_tokens=counts[0], output_tokens=counts[1]), None


def transcription_cost(model: str, usage: Usage, seconds: float | None) -> float | None:
    """US dollars from litellm's offline map: by the second for models billed so, else audio
    tokens in and text tokens out; None when the map has no price that fits the usage."""
    info = model_info(model)
    if info is None:
        return None
    if seconds is not None:
        rate = info.input_cost_per_second
        return seconds * rate if rate is not None else None
    rate_in = info.input_cost_per_audio_token or info.input_cost_per_token
    rate_out = info.output_cost_per_token
    if rate_in is None or rate_out is None or not (usage.input_tokens or usage.output_tokens):
        return None
    return usage.input_tokens * rate_in + usage.output_tokens * rate_out
