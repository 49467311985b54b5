"""What an approval prompt says: every argument key, long values cut to head and tail, who decides."""

from __future__ import annotations

import io
import json
import unicodedata
from typing import Any

import discord
from discord.utils import escape_markdown, escape_mentions

from bot.core.approvals import ApproverRule
from bot.core.arguments import pretty
from bot.core.events import ApprovalRequested

ARGUMENTS_FILE = "arguments.json"
EDITED_FILE = "edited-arguments.json"
# The prompt stays well under Discord's 2000 characters, leaving room for the outcome lines.
# Budget of a prompt (2000 characters at most on Discord): header and names ~250, arguments
# 1000, the shortened note 90, who may decide 250, and outcome lines after a decision ~300.
ARGUMENTS_BUDGET = 1000
WHO_BUDGET = 250
MESSAGE_MAX = 2000
# Tried in turn until every key fits: how many characters of each value are shown.
VALUE_LIMITS = (300, 120, 48, 16)
KEY_LIMIT = 60
MODAL_TEXT_MAX = 4000  # Discord's limit for a text input's value
REASON_MAX = 1000
REASON_SHOWN = 150
SHORTENED_NOTE = (
    "✂️ Some values are shortened here; the full arguments are attached as `arguments.json`."
)
_OUTCOME_LINES = {
    "approved": "✅ Approved by <@{user}>.",
    "always": "✅ Always allowed by <@{user}> for the rest of this conversation.",
    "denied": "❌ Denied by <@{user}>.",
    "timeout": "⌛ Nobody decided in time, so the tool was not run.",
    "expired": "⌛ Expired: the bot restarted before anyone decided. Ask again.",
}


def _visible(text: str) -> str:
    """Control and invisible format characters (RTL overrides, zero-width spaces) could disguise
    a value; show them as escapes. A ``` would end the code block early: defuse it."""
    out = "".join(
        f"\\u{ord(ch):04x}" if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch
        for ch in text
    )
    return out.replace("```", "`\u200b``")


def _shorten(text: str, limit: int) -> tuple[str, bool]:
    """Head and tail of a long value, with how much was left out: the end may be what matters."""
    if len(text) <= limit:
        return text, False
    head = max(limit * 2 // 3, 1)
    tail = max(limit - head, 1)
    return f"{text[:head]}…[{len(text) - head - tail} more chars]…{text[-tail:]}", True


def shown_arguments(arguments: dict[str, Any]) -> tuple[str, bool]:
    """One line per argument key, values shortened until all keys fit; and whether anything was
    shortened (then the full JSON must be attached)."""
    if not arguments:
        return "(no arguments)", False
    for limit in VALUE_LIMITS:
        lines, cut = [], False
        for key, value in arguments.items():
            shown_key, key_cut = _shorten(json.dumps(str(key), ensure_ascii=False), KEY_LIMIT)
            raw = json.dumps(value, ensure_ascii=False, default=str)
            shown_value, value_cut = _shorten(raw, limit)
            cut = cut or key_cut or value_cut
            lines.append(f"{shown_key}: {shown_value}")
        text = "\n".join(_visible(line) for line in lines)
        if len(text) <= ARGUMENTS_BUDGET:
            return text, cut
    # So many keys that even short values do not fit: list the keys alone, as many as fit.
    keys = [_shorten(json.dumps(str(k), ensure_ascii=False), KEY_LIMIT)[0] for k in arguments]
    text, count = "", 0
    for key in keys:
        if len(text) + len(key) + 2 > ARGUMENTS_BUDGET - 40:
            break
        text += ("" if not text else ", ") + key
        count += 1
    if count < len(keys):
        text += f", … and {len(keys) - count} more keys"
    return _visible(text) + "\n(values: see arguments.json)", True


def arguments_file(arguments: dict[str, Any], filename: str = ARGUMENTS_FILE) -> discord.File:
    return discord.File(io.BytesIO(pretty(arguments).encode()), filename=filename)


def who_may_decide(rule: ApproverRule, requester_id: int, server: str = "") -> str:
    people = []
    if rule.requester_can_approve:
        people.append(f"<@{requester_id}> (who asked)")
    people += [f"<@{user}>" for user in sorted(rule.users)]
    people += [f"members of <@&{role}>" for role in sorted(rule.roles)]
    people.append("an admin")
    text = ", ".join(people[:-1]) + f" or {people[-1]}" if len(people) > 1 else people[0]
    if len(text) > WHO_BUDGET:  # a long approver list: counted, and listed by /tools
        asker = f"<@{requester_id}> (who asked), " if rule.requester_can_approve else ""
        text = (
            f"{asker}the {len(rule.users)} user(s) and {len(rule.roles)} role(s) "
            f"approving `{server}`, or an admin"
        )
    if not rule.requester_can_approve:
        text += f"; <@{requester_id}>, who asked, may only deny"
    return f"Who may decide: {text}."


def prompt_text(event: ApprovalRequested, rule: ApproverRule | None = None) -> tuple[str, bool]:
    """The prompt's text, and whether the full arguments must be attached."""
    shown, shortened = shown_arguments(event.arguments)
    text = (
        f"🔐 **Approval needed**, <@{event.requester_id}>: the model wants to run "
        f"`{event.tool}` from `{event.server}` with:\n```json\n{shown}\n```"
    )
    if shortened:
        text += f"\n{SHORTENED_NOTE}"
    text += "\n" + who_may_decide(rule or ApproverRule(), event.requester_id, event.server)
    return text, shortened


def outcome_line(
    status: str, user_id: int | None, *, edited: bool = False, reason: str | None = None
) -> str:
    if edited:
        return f"✏️ Approved by <@{user_id}> with edited arguments (attached as `{EDITED_FILE}`)."
    if reason is not None:
        said = _visible(_shorten(" ".join(reason.split()), REASON_SHOWN)[0])
        return f"❌ Denied by <@{user_id}>, who said: “{said}”"
    return _OUTCOME_LINES.get(status, f"Decided: {status}.").format(user=user_id)


def with_line(content: str, line: str) -> str:
    if line in content:
        return content  # shown already (e.g. expired at start-up, then clicked)
    if len(content) + len(line) + 1 > MESSAGE_MAX:
        # Never refused by Discord for length: the outcome matters more than the tail, and the
        # full arguments stay attached. A cut code block is closed again.
        content = content[: MESSAGE_MAX - len(line) - 6] + "…"
        if content.count("```") % 2:
            content += "\n```"
    return f"{content}\n{line}" if content else line


def with_outcome(content: str, status: str, user_id: int | None) -> str:
    return with_line(content, outcome_line(status, user_id))


def withdrawn_line(stopped_by: str) -> str:
    """The outcome of a prompt whose turn was stopped: a name, shown and never pinged."""
    name = escape_mentions(escape_markdown(" ".join(stopped_by.split()) or "someone"))
    return f"⏹ Withdrawn: the answer was stopped by {name}, so the tool was not run."
