"""Tool-call arguments a person edits or audits: JSON Schema checks, pretty JSON, value-free digests."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from bot.core.keyed import keyed_hash

KEY_SHOWN = 40  # characters of one argument key in a digest
KEYS_SHOWN = 120  # characters of all of them
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]+")
# Characters that could end, hide or reorder a line: controls (newlines included), invisible
# format characters (RTL overrides, zero-width), line and paragraph separators, surrogates.
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def check_arguments(text: str, schema: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Edited arguments as a dict, or a one-line problem naming what is wrong."""
    # Imported here, when a person has edited arguments: jsonschema and what it loads are ~3 MB
    # of memory that most bots never need (the bench's s1 keeps the bot under 120 MB).
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import SchemaError
    from referencing.exceptions import Unresolvable

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return {}, f"That is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
    if not isinstance(value, dict):
        return {}, "The arguments must be a JSON object ({...})."
    # The schema names its own draft; tools that name none get the current one.
    cls = validators.validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
        errors = sorted(cls(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    except (SchemaError, Unresolvable):
        # The server's schema is broken (or points where nothing is, and remote references are
        # never fetched): the tool itself will judge.
        return value, None
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "the arguments"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        return {}, f"{where}: {first.message}{more}."
    return value, None


def pretty(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, indent=2, ensure_ascii=False, default=str)


def digest(arguments: dict[str, Any], secret: bytes) -> str:
    """A short fingerprint of arguments for logs and audit lines: the keys and a hash, no values
    (values may hold whatever the model read, secrets included). The hash is keyed with the
    install's secret (`Store.install_secret`): unkeyed, a short value could be found by trying
    them all."""
    canonical = json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str)
    return f"{shown_keys(arguments)} · hmac {keyed_hash(secret, 'arguments', canonical)[:12]}"


def shown_keys(arguments: dict[str, Any]) -> str:
    """The argument keys as one inline code span, safe to put in a line of text. The model picks
    the keys: quoted, with line breaks and hidden characters escaped and no backtick of their own,
    they can neither start another line nor format, mention or hide anything."""
    if not arguments:
        return "`no arguments`"
    keys = []
    for key in sorted(map(str, arguments)):
        shown = key if _PLAIN_KEY.fullmatch(key) else _escaped(json.dumps(key, ensure_ascii=False))
        keys.append(shown if len(shown) <= KEY_SHOWN else shown[: KEY_SHOWN - 1] + "…")
    text = ", ".join(keys)
    if len(text) > KEYS_SHOWN:
        text = text[: KEYS_SHOWN - 1] + "…"
    return f"`{text}`"


def _escaped(text: str) -> str:
    return "".join(
        f"\\u{ord(ch):04x}" if ch == "`" or unicodedata.category(ch) in _HIDDEN else ch
        for ch in text
    )
