"""Where a chat completion goes: the openai SDK for OpenAI-compatible models, litellm for the rest.

litellm translates ~100 providers, but for a model that already speaks OpenAI's protocol
(`openai/...`: OpenAI itself, a LiteLLM proxy, Ollama, vLLM, LM Studio behind `base_url`) that
translation buys nothing and costs: about 130 MB of memory for its import and twice the CPU per
streamed chunk of the openai SDK (measured in bench/, see README's Performance section). So such
models go straight through the openai SDK, which the responses backend loads anyway, and
litellm is imported only when a model needs it. Both return the same chunk shape
(`choices[0].delta`, `usage`; the openai path's stream is read by sse.py), and litellm's
exceptions subclass openai's, so the tool loop and the retry rules are the same on both paths.
Which server and key a model gets is routes.py's business: a key goes only to its own provider.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from bot.backends.base import OpenAIClients, sdk_arguments
from bot.backends.routes import OPENAI_PREFIX, route
from bot.backends.sse import Fields, open_stream
from bot.config import LLMConfig, ModelEntry

log = logging.getLogger(__name__)


def import_litellm() -> Any:
    # Offline, litellm stalls ~15 s at import fetching a price list unless told to use its copy.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def speaks_openai(model: str | ModelEntry) -> bool:
    """True for models whose endpoint takes OpenAI's chat completions as they are."""
    name = model.model if isinstance(model, ModelEntry) else model
    return name.startswith(OPENAI_PREFIX)


def needs_litellm(models: Iterable[str | ModelEntry]) -> bool:
    """Names or `llm.models`-style entries: only the name says which path a model takes."""
    return any(not speaks_openai(m) for m in models)


def litellm_route(llm: LLMConfig, model: str) -> dict[str, Any]:
    """litellm's arguments that send `model`'s request to its server with its key (routes.py),
    for a completion and a transcription alike."""
    found = route(llm, model)
    extra: dict[str, Any] = {"timeout": llm.request_timeout_s, "max_retries": 0}
    if found.base_url:
        extra["api_base"] = found.base_url
    if found.api_key is not None:
        extra["api_key"] = found.api_key.get_secret_value()
    elif not found.own_variable:
        # Its own server and no api_key_env: litellm must not send the provider's variable.
        extra["api_key"] = "not-set"
    # Otherwise no key: litellm reads the provider's own variable (ANTHROPIC_API_KEY, ...).
    return extra


class ChatTransport:
    """Sends a chat completion for any configured model."""

    def __init__(self, llm: LLMConfig) -> None:
        self._llm = llm
        self._openai = OpenAIClients(llm)
        self._litellm: Any = None

    async def create(self, model: str, **kwargs: Any) -> Any:
        """`kwargs` are chat-completion parameters (messages, tools, params); with `stream=True`
        the answer is an async iterator of chunks, otherwise one completion."""
        if speaks_openai(model):
            client = self._openai.for_model(model)
            create = client.chat.completions.create
            arguments = {
                "model": model.removeprefix(OPENAI_PREFIX),
                **sdk_arguments(create, kwargs),
            }
            if kwargs.get("stream"):
                # The lean request and reader (sse.py): chunks as `Fields`, not pydantic models.
                return await open_stream(client, "/chat/completions", arguments, Fields)
            return await create(**arguments)
        if self._litellm is None:
            self._litellm = import_litellm()
        return await self._litellm.acompletion(
            model=model, **kwargs, **litellm_route(self._llm, model)
        )

    async def aclose(self) -> None:
        await self._openai.aclose()


async def close_stream(stream: Any) -> None:
    """Close a chat stream of either path: the lean reader's EventStream or litellm's wrapper."""
    close = getattr(stream, "aclose", None) or getattr(stream, "close", None)
    if close is None:
        return
    try:
        result = close()
        if hasattr(result, "__await__"):
            await result
    except Exception as exc:
        log.debug("closing a chat stream failed: %s", exc)
