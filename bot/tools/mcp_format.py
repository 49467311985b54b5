"""Pure helpers for the MCP client: exposed tool names, schemas, result text and error reasons."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

import httpx2
import mcp_types as types
from mcp import MCPError
from mcp_types import CONNECTION_CLOSED

MAX_NAME = 64
MAX_RESULT_CHARS = 20_000
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_HASH_LEN = 8


def exposed_name(server: str, tool: str, taken: Iterable[str] = ()) -> str:
    """`<server>__<tool>`, sanitised to ^[a-zA-Z0-9_-]{1,64}$ and unique among `taken`.

    A name that is too long, or that collides with one already taken, keeps its first 55
    characters and gets `_` plus 8 hex digits of sha256("<server>\\0<tool>") appended: the
    same tool always gets the same suffix, so names stay stable across restarts.
    """
    base = _UNSAFE.sub("_", f"{server}__{tool}")
    taken = set(taken)
    if len(base) <= MAX_NAME and base not in taken:
        return base
    digest = hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()
    # Longer digests only on an (astronomically unlikely) collision of the short one.
    for size in range(_HASH_LEN, len(digest) + 1, 4):
        candidate = f"{base[: MAX_NAME - size - 1]}_{digest[:size]}"
        if candidate not in taken:
            return candidate
    raise ValueError(f"cannot find a unique name for {server}/{tool}")  # pragma: no cover


def object_schema(schema: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of a tool's input schema that function-calling APIs accept (an object with properties)."""
    result = dict(schema or {})
    result["type"] = "object"
    if not isinstance(result.get("properties"), dict):
        result["properties"] = {}
    return result


def result_text(result: types.CallToolResult) -> str:
    """What the model sees: the text contents joined, else structured content as JSON."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.EmbeddedResource):
            res = block.resource
            if isinstance(res, types.TextResourceContents):
                parts.append(res.text)
            else:
                parts.append(f"[binary resource {res.uri} ({res.mime_type or 'unknown type'})]")
        elif isinstance(block, types.ResourceLink):
            parts.append(f"[resource link: {block.uri}]")
        elif isinstance(block, types.ImageContent | types.AudioContent):
            # The model cannot see media through a function result; say that it exists.
            kind = "image" if isinstance(block, types.ImageContent) else "audio"
            parts.append(f"[{kind} ({block.mime_type}) omitted]")
    has_text = any(
        isinstance(b, types.TextContent | types.EmbeddedResource) for b in result.content
    )
    if not has_text and result.structured_content is not None:
        parts = [json.dumps(result.structured_content, ensure_ascii=False, default=str)]
    text = "\n".join(parts)
    if not text:
        text = "the tool reported an error without details" if result.is_error else "(no output)"
    return truncate(text)


def truncate(text: str, limit: int = MAX_RESULT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[truncated: showing {limit} of {len(text)} characters]"


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def describe_error(
    exc: BaseException, http_status: int | None = None, command: str | None = None
) -> str:
    """One short plain reason for a failed connection or call (no secrets: see redact());
    `command`: the program a stdio server was started with, named when it is not found and the
    error carries no file name (uvloop's does not)."""
    leaves = _leaves(exc)
    # The root cause is the first non-cancellation leaf; cancellations are its consequences.
    leaf = next((e for e in leaves if isinstance(e, Exception)), leaves[0])
    if http_status is not None and http_status >= 400:
        return f"the server answered HTTP {http_status}"
    if isinstance(leaf, FileNotFoundError):
        return f"not found: {leaf.filename or command}"
    if isinstance(leaf, PermissionError):
        return f"permission denied: {leaf.filename or command}"
    if isinstance(leaf, httpx2.ConnectError):
        return "cannot connect (connection refused or host unreachable)"
    if isinstance(leaf, httpx2.TimeoutException):
        return "the HTTP request timed out"
    if isinstance(leaf, httpx2.HTTPError):
        return f"HTTP error: {type(leaf).__name__}"
    if isinstance(leaf, MCPError):
        if leaf.code == CONNECTION_CLOSED:
            return "connection closed"
        return f"MCP error {leaf.code}: {leaf.error.message}"
    if isinstance(leaf, OSError):
        return f"{type(leaf).__name__}: {leaf.strerror or leaf}"
    text = str(leaf).strip().splitlines()
    return f"{type(leaf).__name__}: {text[0]}" if text else type(leaf).__name__


def redact(text: str, secrets: Iterable[str]) -> str:
    """Blank out configured secret values that a server or library echoed into a message."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def short_url(url: str) -> str:
    """scheme://host:port only: paths and queries may carry tokens, so logs never show them."""
    parsed = httpx2.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}"
