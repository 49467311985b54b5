"""Erasing one user: what /forget and `python -m bot forget-user` do to the database, in one step.

After it no cell holds the user's id or words (whole, inside a key like "guild:channel:user", or
inside JSON), and nothing in the database says that an erasure happened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiosqlite

from bot.store.authors import content_hash, is_user_message, redact_turns
from bot.store.queries import timestamp
from bot.store.usage import forgotten_hash
from bot.store.usage_fold import fold_usage

REMOVED = "[removed]"
# The usage of the last day stays (daily limits must still hold), under a hash of the id.
KEPT_USAGE = timedelta(hours=24)


@dataclass(frozen=True)
class Erased:
    """What one erasure removed, for the user's confirmation and the operator's line."""

    conversations: int = 0
    shared_turns: int = 0  # their messages replaced in shared conversations
    approvals: int = 0  # asked for by them, deleted
    decisions: int = 0  # made by them for others, kept without their name
    grants: int = 0
    usage_folded: int = 0  # older than a day: now in anonymous daily totals
    usage_kept: int = 0  # the last day, under an HMAC of the id
    channel_prompts: int = 0
    mentions: int = 0  # other cells that named them (a mention, a tool argument)


async def erase_user(
    db: aiosqlite.Connection, user_id: int, *, secret: bytes, now: datetime
) -> Erased:
    """Run inside a write transaction."""
    uid = str(user_id)
    own_key = f"%:{uid}"  # keys are "guild:channel:user"; ids are digits, so no LIKE wildcards
    conversations = await db.execute(
        "DELETE FROM conversations WHERE user_id = ? OR key LIKE ?", (user_id, own_key)
    )
    grants = await db.execute(
        "DELETE FROM tool_grants WHERE granted_by = ? OR conversation_key LIKE ?",
        (user_id, own_key),
    )
    approvals = await db.execute(
        "DELETE FROM approvals WHERE requester_id = ? OR conversation_key LIKE ?",
        (user_id, own_key),
    )
    # The decision stays (it is the other person's record); the decider and their own words
    # (a reason, edited arguments) go.
    decisions = await db.execute(
        "UPDATE approvals SET decided_by = ?, reason = NULL, edited_arguments = NULL"
        " WHERE decided_by = ?",
        (REMOVED, user_id),
    )
    # A shared conversation's turn cut by a restart keeps a copy of its history to resume
    # from, which may hold their words: it is not resumed (its approval expires) instead.
    await db.execute(
        "UPDATE approvals SET resume_state = NULL"
        " WHERE resume_state IS NOT NULL AND conversation_key LIKE '%:0'"
    )
    shared_turns = await _redact_shared_turns(db, user_id, secret)
    folded, kept = await _anonymize_usage(db, user_id, secret, now)
    prompts = await db.execute("DELETE FROM channel_prompts WHERE set_by = ?", (user_id,))
    mentions = await _scrub_mentions(db, uid, secret)
    return Erased(
        conversations=conversations.rowcount,
        shared_turns=shared_turns,
        approvals=approvals.rowcount,
        decisions=decisions.rowcount,
        grants=grants.rowcount,
        usage_folded=folded,
        usage_kept=kept,
        channel_prompts=prompts.rowcount,
        mentions=mentions,
    )


async def _redact_shared_turns(db: aiosqlite.Connection, user_id: int, secret: bytes) -> int:
    rows = await db.execute_fetchall(
        "SELECT conversation_key, content_hash FROM turn_authors WHERE user_id = ?", (user_id,)
    )
    theirs: dict[str, set[str]] = {}
    for row in rows:
        theirs.setdefault(row[0], set()).add(row[1])
    replaced = 0
    for key, hashes in theirs.items():
        found = list(
            await db.execute_fetchall("SELECT history FROM conversations WHERE key = ?", (key,))
        )
        if not found:
            continue
        history, count = redact_turns(json.loads(found[0][0]), hashes, secret)
        if count:
            await db.execute(
                "UPDATE conversations SET history = ? WHERE key = ?", (_dump(history), key)
            )
            replaced += count
    await db.execute("DELETE FROM turn_authors WHERE user_id = ?", (user_id,))
    return replaced


async def _anonymize_usage(
    db: aiosqlite.Connection, user_id: int, secret: bytes, now: datetime
) -> tuple[int, int]:
    """Older than a day: folded into anonymous daily totals. The last day: kept for the daily
    limits, with user_id 0, the hash, and a key that no longer names the user."""
    cutoff = timestamp(now - KEPT_USAGE)
    folded = await fold_usage(db, "user_id = ? AND created_at < ?", (user_id, cutoff))
    kept = await db.execute(
        "UPDATE usage SET user_id = 0, user_hash = ?,"
        " conversation_key = guild_id || ':' || channel_id || ':0' WHERE user_id = ?",
        (forgotten_hash(secret, user_id), user_id),
    )
    return folded, kept.rowcount


# Text cells that may hold someone's id inside other words or JSON: a mention (<@id>) in another
# person's message, a tool argument, a decision's note to the model ("user id 123").
_JSON_CELLS = (
    ("conversations", "key", "history"),
    ("approvals", "id", "arguments"),
    ("approvals", "id", "edited_arguments"),
)
_TEXT_CELLS = (("channel_prompts", "channel_id", "system_prompt"), ("approvals", "id", "reason"))


async def _scrub_mentions(db: aiosqlite.Connection, uid: str, secret: bytes) -> int:
    changed = 0
    for table, key, column in _JSON_CELLS + _TEXT_CELLS:
        rows = await db.execute_fetchall(
            f"SELECT {key}, {column} FROM {table} WHERE instr({column}, ?) > 0", (uid,)
        )
        for row_key, text in rows:
            if (table, key, column) in _TEXT_CELLS:
                new_text = text.replace(uid, REMOVED)
            else:
                value = json.loads(text)
                new_value = _scrubbed(value, uid)
                if table == "conversations":
                    await _rehash_authors(db, row_key, value, new_value, secret)
                new_text = _dump(new_value)
                if uid in new_text:  # e.g. a number that merely contains the id's digits
                    new_text = new_text.replace(uid, REMOVED)
            await db.execute(
                f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (new_text, row_key)
            )
            changed += 1
    return changed


def _scrubbed(value: Any, uid: str) -> Any:
    if isinstance(value, str):
        return value.replace(uid, REMOVED)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and uid in str(value):
        return REMOVED
    if isinstance(value, list):
        return [_scrubbed(item, uid) for item in value]
    if isinstance(value, dict):
        return {_scrubbed(k, uid): _scrubbed(v, uid) for k, v in value.items()}
    return value


async def _rehash_authors(
    db: aiosqlite.Connection, key: str, old: Any, new: Any, secret: bytes
) -> None:
    """Another person's message that mentioned the user changed: keep it attributed to them."""
    if not isinstance(old, list) or not isinstance(new, list):
        return
    for before, after in zip(old, new, strict=True):
        if is_user_message(before) and before != after:
            await db.execute(
                "UPDATE OR IGNORE turn_authors SET content_hash = ?"
                " WHERE conversation_key = ? AND content_hash = ?",
                (content_hash(secret, after), key, content_hash(secret, before)),
            )


def _dump(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a model's lone surrogate: stored escaped, as the store does
        text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text
