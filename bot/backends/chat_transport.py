"""Where a chat completion goes: the openai SDK for OpenAI-compatible models, litellm for the rest.

litellm translates ~100 providers, but for a model that already speaks OpenAI's protocol
(`openai/...`: OpenAI itself, a LiteLLM proxy, Ollama, vLLM, LM Studio behind `base_url`) that
translation buys nothing and costs: about 130 MB of memory for its import and twice the CPU per
streamed chunk of the openai SDK (measured in bench/, see README's Performance section). So such
models go straight through the openai SDK, which the responses backend loads anyway, and
litellm is imported only when a model needs it. Both return the same chunk shape
(`choices[0].delta`, `usage`), and litellm's exceptions subclass openai's, so the tool loop and
the retry rules are the same on both paths.
"""

from __future__ import annotations

import os
from typing import Any

import openai

from bot.backends.base import openai_client
from bot.config import LLMConfig

OPENAI_PREFIX = "openai/"


def import_litellm() -> Any:
    # Offline, litellm stalls ~15 s at import fetching a price list unless told to use its copy.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def speaks_openai(model: str) -> bool:
    """True for models whose endpoint takes OpenAI's chat completions as they are."""
    return model.startswith(OPENAI_PREFIX)


def needs_litellm(models: list[str]) -> bool:
    return any(not speaks_openai(m) for m in models)


class ChatTransport:
    """Sends a chat completion for any configured model."""

    def __init__(self, llm: LLMConfig) -> None:
        self._llm = llm
        self._openai: openai.AsyncOpenAI | None = None
        self._litellm: Any = None

    async def create(self, model: str, **kwargs: Any) -> Any:
        """`kwargs` are chat-completion parameters (messages, tools, params); with `stream=True`
        the answer is an async iterator of chunks, otherwise one completion."""
        if speaks_openai(model):
            client = self._openai_client()
            return await client.chat.completions.create(
                model=model.removeprefix(OPENAI_PREFIX), **kwargs
            )
        if self._litellm is None:
            self._litellm = import_litellm()
        extra: dict[str, Any] = {"timeout": self._llm.request_timeout_s, "max_retries": 0}
        if self._llm.base_url:
            extra["api_base"] = self._llm.base_url
        if self._llm.api_key is not None:
            extra["api_key"] = self._llm.api_key.get_secret_value()
        return await self._litellm.acompletion(model=model, **kwargs, **extra)

    async def aclose(self) -> None:
        if self._openai is not None:
            await self._openai.close()

    def _openai_client(self) -> openai.AsyncOpenAI:
        if self._openai is None:
            self._openai = openai_client(self._llm)
        return self._openai
