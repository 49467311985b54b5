"""Counts a request's tokens with a real tokenizer (o200k_base, as OpenAI's current models do).

The bot estimates tokens from the JSON length; a fake that measured the same way could never show
that estimate wrong. Text that tokenizes densely (CJK, emoji) costs far more here than a count of
characters suggests, as it does on a real provider. The encoding loads offline from the copy that
litellm ships.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import tiktoken

# OpenAI's accounting for chat messages: a few tokens of framing per message and per reply.
PER_MESSAGE = 3
PER_REPLY = 3
IMAGE_TOKENS = 765  # one 512x512 image at high detail (85 + 4 tiles x 170), whatever its bytes


@functools.cache
def _encoding() -> tiktoken.Encoding:
    import litellm.litellm_core_utils.tokenizers as shipped  # noqa: PLC0415 - heavy, only here

    # tiktoken reads a cached copy by its URL's hash from this directory: no download.
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(Path(shipped.__file__).parent))
    return tiktoken.get_encoding("o200k_base")


def text_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def _value_tokens(value: Any) -> int:
    """Tokens of every string inside `value`; an image counts as an image, not as base64."""
    if isinstance(value, str):
        if value.startswith("data:image/"):
            return IMAGE_TOKENS
        return text_tokens(value)
    if isinstance(value, dict):
        if value.get("type") in ("image_url", "input_image"):
            return IMAGE_TOKENS
        return sum(_value_tokens(v) for k, v in value.items() if k != "id")
    if isinstance(value, list):
        return sum(_value_tokens(v) for v in value)
    return 0 if value is None else text_tokens(str(value))


def count(items: Any) -> int:
    """Prompt tokens of `messages` (chat) or `input` items (Responses), framing included."""
    if isinstance(items, str):
        return text_tokens(items) + PER_MESSAGE + PER_REPLY
    if not isinstance(items, list):
        return PER_REPLY
    return sum(PER_MESSAGE + _value_tokens(item) for item in items) + PER_REPLY
