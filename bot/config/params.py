"""`llm.params`: what may pass through to the model API, and the keys only the bot may set."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

# Each of these is decided per request by the bot (the conversation, the tools, streaming,
# state, identity, caching); a value from config would break turns or leak what they protect.
OWNED_BY_THE_BOT = (
    "model",
    "messages",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "stream",
    "stream_options",
    "store",
    "previous_response_id",
    "truncation",
    "user",
    "safety_identifier",
    "prompt_cache_key",
)


def _not_owned(params: dict[str, Any]) -> dict[str, Any]:
    owned = [key for key in params if key in OWNED_BY_THE_BOT]
    if owned:
        raise ValueError(
            f"`{owned[0]}` is set by the bot itself and cannot be passed through; "
            "remove it from llm.params"
        )
    return params


LLMParams = Annotated[dict[str, Any], AfterValidator(_not_owned)]
