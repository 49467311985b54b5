"""Tool-call arguments a person edits or audits: JSON Schema checks, pretty JSON, value-free digests."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError


def check_arguments(text: str, schema: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Edited arguments as a dict, or a one-line problem naming what is wrong."""
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
    except SchemaError:
        return value, None  # the server's schema is broken: the tool itself will judge
    errors = sorted(cls(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "the arguments"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        return {}, f"{where}: {first.message}{more}."
    return value, None


def pretty(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, indent=2, ensure_ascii=False, default=str)


def digest(arguments: dict[str, Any]) -> str:
    """A short fingerprint of arguments for logs and audit lines: the keys and a hash, no values
    (values may hold whatever the model read, secrets included)."""
    canonical = json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str)
    keys = ", ".join(sorted(arguments)) or "no arguments"
    if len(keys) > 120:
        keys = keys[:117] + "…"
    return f"{keys} · sha256 {hashlib.sha256(canonical.encode()).hexdigest()[:12]}"
