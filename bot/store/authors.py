"""Who said what in a shared conversation: its history has no names, /forget needs them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.core.keyed import keyed_hash
from bot.core.state import ConversationKey
from bot.store.turns import Statement

REMOVED_TURN = "[removed at the user's request]"
_PURPOSE = "turn-author"


def content_hash(secret: bytes, message: dict[str, Any]) -> str:
    """An HMAC of a user message's content: the same words give the same hash in this install."""
    content = json.dumps(message.get("content"), sort_keys=True, ensure_ascii=False)
    return keyed_hash(secret, _PURPOSE, content)


def is_user_message(item: Any) -> bool:
    # Chat messages and Responses input items both say role "user" for what a person wrote.
    return isinstance(item, dict) and item.get("role") == "user"


def author_statements(
    key: ConversationKey,
    history: Sequence[dict[str, Any]],
    user_id: int,
    secret: bytes,
    now: str,
) -> list[Statement]:
    """For a shared conversation's save: the newest user message is this turn's asker's; rows
    for messages no longer in the history (trimmed away) go, so nothing outlives its words."""
    asked = [item for item in history if is_user_message(item)]
    if not asked:
        return [("DELETE FROM turn_authors WHERE conversation_key = ?", (str(key),))]
    hashes = sorted({content_hash(secret, item) for item in asked})
    marks = ", ".join("?" for _ in hashes)
    return [
        (
            "INSERT INTO turn_authors (conversation_key, content_hash, user_id, created_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (str(key), content_hash(secret, asked[-1]), user_id, now),
        ),
        (
            f"DELETE FROM turn_authors WHERE conversation_key = ? AND content_hash NOT IN ({marks})",
            (str(key), *hashes),
        ),
    ]


def redact_turns(history: list[Any], hashes: set[str], secret: bytes) -> tuple[list[Any], int]:
    """The history with the user messages whose content hash is in `hashes` replaced by
    REMOVED_TURN (the answers stay: they are the bot's words), and how many were replaced."""
    out: list[Any] = []
    replaced = 0
    for item in history:
        if is_user_message(item) and content_hash(secret, item) in hashes:
            item = {**item, "content": REMOVED_TURN}
            replaced += 1
        out.append(item)
    return out, replaced
