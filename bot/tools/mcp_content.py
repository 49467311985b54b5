"""Splits an MCP tool result between the model (text) and the user (files, user-only notes)."""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
import re
from dataclasses import dataclass, field

import mcp_types as types

from bot.tools.mcp_format import truncate

MAX_INLINE_RESOURCE_CHARS = 8_000  # an embedded text resource may be a whole file
# As for users' images: a tool's file past this is dropped before it is decoded or copied (a vision
# request would carry it again, base64, in every copy of the round).
MAX_TOOL_FILE_BYTES = 8 * 1024 * 1024
_UNSAFE_FILE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Attachment:
    """A file for the user's reply (an image, audio or a binary resource the tool returned)."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class SplitResult:
    text: str  # what the model reads
    attachments: tuple[Attachment, ...] = ()
    user_notes: tuple[str, ...] = ()  # content annotated for the user only
    images: tuple[tuple[str, str], ...] = ()  # (mime type, base64) for a vision model


@dataclass
class _Builder:
    tool: str
    model: list[str] = field(default_factory=list)
    files: list[Attachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)

    def attach(self, data: bytes, mime: str | None, hint: str | None = None) -> Attachment:
        mime = mime or "application/octet-stream"
        stem = _UNSAFE_FILE.sub("-", hint or self.tool).strip("-.") or "file"
        suffix = mimetypes.guess_extension(mime) or ".bin"
        if not stem.endswith(suffix):
            stem += suffix
        name = stem if len(self.files) == 0 else f"{len(self.files) + 1}-{stem}"
        attachment = Attachment(filename=name, content_type=mime, data=data)
        self.files.append(attachment)
        return attachment


def _for_user_only(block: object) -> bool:
    annotations = getattr(block, "annotations", None)
    audience = list(getattr(annotations, "audience", None) or [])
    return bool(audience) and "assistant" not in audience


def _too_big(data: str) -> bool:
    return len(data) // 4 * 3 > MAX_TOOL_FILE_BYTES  # base64's size, without decoding it


def _dropped(what: str, data: str) -> str:
    mb = len(data) // 4 * 3 / 1024 / 1024
    return f"[{what} of {mb:.1f} MB: larger than the 8 MB the bot passes on; dropped]"


def _decode(data: str) -> bytes | None:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def _size(n: int) -> str:
    return f"{n} bytes" if n < 1024 else f"{n / 1024:.1f} KiB"


def split_result(result: types.CallToolResult, tool: str) -> SplitResult:
    """Text (and text resources, capped) for the model; media and blobs become attachments that
    the model learns about from a short note; `audience: ["user"]` content skips the model."""
    b = _Builder(tool=tool)
    for block in result.content:
        user_only = _for_user_only(block)
        if isinstance(block, types.TextContent):
            (b.notes if user_only else b.model).append(block.text)
        elif isinstance(block, types.ImageContent | types.AudioContent):
            kind = "image" if isinstance(block, types.ImageContent) else "audio"
            if _too_big(block.data):
                b.model.append(_dropped(f"{kind} ({block.mime_type})", block.data))
                continue
            data = _decode(block.data)
            if data is None:
                b.model.append(f"[{kind} ({block.mime_type}) that was not valid base64: dropped]")
                continue
            file = b.attach(data, block.mime_type)
            if not user_only:
                b.model.append(
                    f"[{kind} {file.filename} ({block.mime_type}, {_size(len(data))}) "
                    "was shown to the user as an attachment]"
                )
                if kind == "image":
                    b.images.append((block.mime_type, block.data))
        elif isinstance(block, types.EmbeddedResource):
            res = block.resource
            if isinstance(res, types.TextResourceContents):
                text = truncate(res.text, MAX_INLINE_RESOURCE_CHARS)
                (b.notes if user_only else b.model).append(f"[resource {res.uri}]\n{text}")
            elif _too_big(res.blob):
                b.model.append(_dropped(f"binary resource {res.uri}", res.blob))
            else:
                data = _decode(res.blob)
                if data is None:
                    b.model.append(f"[binary resource {res.uri}: not valid base64, dropped]")
                    continue
                file = b.attach(data, res.mime_type, str(res.uri).rsplit("/", 1)[-1])
                if not user_only:
                    b.model.append(
                        f"[binary resource {res.uri} ({res.mime_type or 'unknown type'}, "
                        f"{_size(len(data))}) was attached for the user as {file.filename}]"
                    )
        elif isinstance(block, types.ResourceLink):
            if user_only:
                b.notes.append(f"{block.name}: {block.uri}")
                continue
            details = ", ".join(x for x in (block.mime_type, block.description or block.title) if x)
            b.model.append(
                f"[resource link: {block.name} <{block.uri}>"
                + (f" ({details})" if details else "")
                + "; read it with the server's read_resource tool]"
            )
    has_text = any(
        isinstance(x, types.TextContent | types.EmbeddedResource) and not _for_user_only(x)
        for x in result.content
    )
    if not has_text and result.structured_content is not None:
        b.model.insert(0, json.dumps(result.structured_content, ensure_ascii=False, default=str))
    text = "\n".join(b.model)
    if not text:
        if result.is_error:
            text = "the tool reported an error without details"
        elif b.notes:
            text = "(the result was shown to the user only)"
        else:
            text = "(no output)"
    return SplitResult(
        text=truncate(text),
        attachments=tuple(b.files),
        user_notes=tuple(b.notes),
        images=tuple(b.images),
    )


def split_resource(
    contents: list[types.TextResourceContents | types.BlobResourceContents], tool: str
) -> SplitResult:
    """A `resources/read` answer, shaped like a tool result."""
    blocks: list[types.ContentBlock] = [
        types.EmbeddedResource(type="resource", resource=c) for c in contents
    ]
    return split_result(types.CallToolResult(content=blocks), tool)
