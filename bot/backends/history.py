"""Trimming stored history without separating a tool call from its result."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def trim_history(items: Sequence[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The newest items, at most `limit`, starting at a user message.

    Starting at a user message is what keeps an assistant tool call and its tool results
    together: they always sit between two user messages. If the newest turn alone is longer than
    the limit, that whole turn is kept rather than cut in the middle of its tool exchange.
    """
    if len(items) <= limit:
        return list(items)
    user_positions = [i for i, item in enumerate(items) if item.get("role") == "user"]
    earliest = len(items) - limit
    for position in user_positions:
        if position >= earliest:
            return list(items[position:])
    return list(items[user_positions[-1] :]) if user_positions else list(items[earliest:])


def user_content(text: str, image_urls: Sequence[str], *, responses: bool) -> Any:
    """A user message's content: plain text, or text plus image parts when there are images."""
    if not image_urls:
        return text
    if responses:
        parts: list[dict[str, Any]] = [{"type": "input_text", "text": text}]
        parts += [{"type": "input_image", "image_url": url} for url in image_urls]
        return parts
    parts = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in image_urls]
    return parts


def without_thinking(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """History to store: thinking blocks and thought signatures are needed only within the
    turn's tool rounds, and would tie the conversation to one provider's format."""
    return [_unsigned(item) for item in items]


def _unsigned(item: dict[str, Any]) -> dict[str, Any]:
    """Without thinking blocks, and tool calls without Gemini's thought signatures
    (`provider_specific_fields`): needed in the turn's own tool rounds only, and another
    provider (after /model) would refuse the unknown field."""
    calls = item.get("tool_calls")
    if "thinking_blocks" not in item and not any(
        isinstance(c, dict) and "provider_specific_fields" in c for c in calls or []
    ):
        return item
    kept = {k: v for k, v in item.items() if k != "thinking_blocks"}
    if calls:
        kept["tool_calls"] = [
            {k: v for k, v in c.items() if k != "provider_specific_fields"}
            if isinstance(c, dict)
            else c
            for c in calls
        ]
    return kept


def with_placeholder(text: str, placeholder: str) -> str:
    """The user's words as stored: images become a note, never a URL that can expire."""
    return f"{text}\n{placeholder}".strip() if placeholder else text


def without_image_urls(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored history with any image URL replaced by a note.

    Histories saved before images were sent inline may still hold Discord CDN URLs, which expire;
    a provider that cannot fetch one refuses the whole request, every turn from then on.
    """
    return [_no_urls(item) for item in items]


def _no_urls(item: dict[str, Any]) -> dict[str, Any]:
    content = item.get("content")
    if item.get("role") != "user" or not isinstance(content, list):
        return item
    parts = []
    for part in content:
        url = part.get("image_url") if isinstance(part, dict) else None
        if isinstance(url, dict):
            url = url.get("url")
        if isinstance(url, str) and not url.startswith("data:"):
            kind = "input_text" if part.get("type") == "input_image" else "text"
            parts.append({"type": kind, "text": "[an image was attached here]"})
        else:
            parts.append(part)
    return {**item, "content": parts}
