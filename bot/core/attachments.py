"""Turns files people attach into text the model can read, or one plain reason why not.

Text and code files are inlined with their name; PDFs give their text through pypdf (a
maintained pure-Python reader); images are the backend's business (llm.vision); everything else,
and anything over a cap, is skipped with a short reason the user sees.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from dataclasses import dataclass
from pathlib import PurePosixPath

log = logging.getLogger(__name__)

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# What the transcription endpoints take (OpenAI: flac, mp3, mp4, m4a, ogg, wav, webm); .mp4 and
# .webm count as audio only with an audio/* content type, as they are mostly videos.
AUDIO_SUFFIXES = frozenset({".ogg", ".oga", ".opus", ".mp3", ".mpga", ".m4a", ".wav", ".flac"})
TEXT_SUFFIXES = frozenset(
    [
        ".txt",
        ".md",
        ".rst",
        ".csv",
        ".tsv",
        ".json",
        ".jsonl",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".cfg",
        ".conf",
        ".log",
        ".xml",
        ".html",
        ".css",
        ".py",
        ".pyi",
        ".js",
        ".mjs",
        ".ts",
        ".tsx",
        ".jsx",
        ".java",
        ".kt",
        ".go",
        ".rs",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cs",
        ".rb",
        ".php",
        ".swift",
        ".sh",
        ".bash",
        ".zsh",
        ".ps1",
        ".sql",
        ".r",
        ".lua",
        ".pl",
        ".scala",
        ".dart",
        ".vue",
        ".svelte",
        ".tex",
        ".diff",
        ".patch",
        ".env",
        ".dockerfile",
        ".gradle",
        ".proto",
        ".graphql",
    ]
)
TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/x-yaml",
        "application/yaml",
        "application/toml",
        "application/javascript",
        "application/x-sh",
        "application/sql",
    }
)


@dataclass(frozen=True)
class AttachmentLimits:
    max_bytes: int  # larger files are not downloaded at all
    max_chars: int  # text beyond this is cut, and the model is told so
    # A compressed PDF within max_bytes can hold thousands of pages: reading stops at the
    # first of these bounds, and the model is told how many pages it did not get.
    max_pdf_pages: int = 100
    pdf_read_s: float = 10.0


@dataclass(frozen=True)
class Extracted:
    """An attachment's text for the model, or why it was skipped (exactly one is set)."""

    name: str
    text: str | None = None
    skipped: str | None = None


def kind_of(name: str, content_type: str | None) -> str:
    """ "image", "audio", "pdf", "text" or "other", by content type first and file name second."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    suffix = PurePosixPath(name.lower()).suffix
    if ctype in IMAGE_TYPES:
        return "image"
    if ctype.startswith("audio/") or (not ctype.startswith("video/") and suffix in AUDIO_SUFFIXES):
        return "audio"
    if ctype == "application/pdf" or suffix == ".pdf":
        return "pdf"
    if ctype.startswith("text/") or ctype in TEXT_TYPES or suffix in TEXT_SUFFIXES:
        return "text"
    if name.lower() in {"dockerfile", "makefile", "readme", "license"}:
        return "text"
    return "other"


async def extract_off_loop(
    name: str, kind: str, data: bytes, limits: AttachmentLimits
) -> Extracted:
    """`extract` in a worker thread: parsing a PDF takes seconds of CPU, and the event loop
    must go on streaming replies meanwhile. A read that outlasts its bound by far (one page
    that never ends) is given up on; its thread finishes on its own."""
    work = asyncio.to_thread(extract, name, kind, data, limits)
    try:
        return await asyncio.wait_for(work, limits.pdf_read_s * 2 + 5)
    except TimeoutError:
        log.info("gave up reading attachment %s: it took too long", name)
        return Extracted(name, skipped="it took too long to read")


def extract(name: str, kind: str, data: bytes, limits: AttachmentLimits) -> Extracted:
    unread = ""  # a PDF read in part says so after its text
    if kind == "text":
        text = _decode(data)
        if text is None:
            return Extracted(name, skipped="not readable as text")
    elif kind == "pdf":
        read = _pdf_text(data, limits)
        if read is None:
            return Extracted(name, skipped="the PDF could not be read")
        text, unread = read
        if not text.strip():
            return Extracted(name, skipped="the PDF has no text layer (scanned pages?)")
    else:
        return Extracted(name, skipped="this file type is not supported")
    if len(text) > limits.max_chars:
        cut = len(text) - limits.max_chars
        text = f"{text[: limits.max_chars]}\n[... {cut} more characters not shown]"
    return Extracted(name, text=f"{text}\n{unread}" if unread else text)


def file_block(item: Extracted) -> str:
    """How an attached file appears in the user's turn."""
    return f'<file name="{item.name}">\n{item.text}\n</file>'


def skip_line(items: list[Extracted]) -> str | None:
    """One short line for everything that was skipped, or None."""
    skipped = [f"{i.name} ({i.skipped})" for i in items if i.skipped]
    if not skipped:
        return None
    return "Skipped attachment" + ("s" if len(skipped) > 1 else "") + ": " + "; ".join(skipped)


def _decode(data: bytes) -> str | None:
    if b"\x00" in data[:4096]:
        return None  # binary, whatever its name says
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return data.decode("latin-1")  # old editors' files: every byte is a character


def _pdf_text(data: bytes, limits: AttachmentLimits) -> tuple[str, str] | None:
    """The text of the pages read, and a note on those that were not ("" when none)."""
    from pypdf import PdfReader  # imported on first use: most turns carry no PDF
    from pypdf.errors import PyPdfError

    deadline = time.monotonic() + limits.pdf_read_s
    try:
        reader = PdfReader(io.BytesIO(data))
        total = len(reader.pages)
        texts: list[str] = []
        size, why = 0, ""
        for page in reader.pages:
            if size > limits.max_chars:
                break  # what comes next would be cut anyway
            if len(texts) >= limits.max_pdf_pages:
                why = f": only the first {limits.max_pdf_pages} are"
                break
            if texts and time.monotonic() > deadline:
                why = ": reading took too long"
                break
            texts.append((page.extract_text() or "").strip())
            size += len(texts[-1]) + 2
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        log.info("could not read a PDF attachment: %s", exc)
        return None
    left = total - len(texts)
    note = f"[... {left} more page{'s' if left > 1 else ''} not read{why}]" if left else ""
    return "\n\n".join(texts), note
